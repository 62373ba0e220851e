//! One time series, one row per time step in time order (as `sunspots.csv`: `year,
//! sunactivity`), turned into a supervised table for one-step-ahead forecasting: each example
//! holds the previous `window` values (`lag_window … lag_1`, oldest first, so that a reshape to
//! `[window, 1]` reads them in time order) and its target is the value that follows.

use crate::csv::{Table, Target};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a series becomes windows (`data.series` in a config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// The column holding the series (the CSV's rows are its time steps, in order).
    pub column: String,
    /// Past values per example.
    pub window: usize,
    /// The last this many targets form the test set (forecast from true past values).
    #[serde(default)]
    pub test_last: usize,
}

impl SeriesSpec {
    /// The windows of `values` (the series in time order): a table of `values.len() − window`
    /// rows, row `i` holding `values[i .. i + window]` and the target `values[i + window]`.
    /// `file` names the series in errors.
    pub fn windows(&self, values: &[f64], file: &str) -> Result<Table> {
        let w = self.window;
        if w == 0 {
            return Err(Error::Invalid(
                "data.series.window must be at least 1".into(),
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "{file}: line {}: the series {:?} has no value there (a forecast needs every \
                 step)",
                i + 2,
                self.column
            )));
        }
        if values.len() <= w {
            return Err(Error::Invalid(format!(
                "{file}: the series has {} steps, too few for a window of {w} and a value to \
                 forecast",
                values.len()
            )));
        }
        let rows = values.len() - w;
        let mut features = Vec::with_capacity(rows * w);
        for i in 0..rows {
            features.extend_from_slice(&values[i..i + w]);
        }
        Ok(Table {
            feature_names: (1..=w).rev().map(|k| format!("lag_{k}")).collect(),
            features,
            rows,
            target: Target::Values(values[w..].to_vec()),
        })
    }

    /// Chronological parts of `rows` windows: training first, then validation (the last
    /// `valid_fraction` of what precedes the test), then the last `test_last` as the test set.
    /// No shuffling: a forecast is judged on the future, not on steps between training ones.
    pub fn split(&self, rows: usize, valid_fraction: f64) -> Result<crate::split::Split> {
        if !(0.0..1.0).contains(&valid_fraction) {
            return Err(Error::Invalid(format!(
                "the validation fraction must be in [0, 1), got {valid_fraction}"
            )));
        }
        if self.test_last >= rows {
            return Err(Error::Invalid(format!(
                "leaves no training windows: the series has {rows} windows, and test_last \
                 takes {}",
                self.test_last
            )));
        }
        let before = rows - self.test_last;
        let valid = (before as f64 * valid_fraction).round() as usize;
        if valid >= before {
            return Err(Error::Invalid(format!(
                "the validation split takes all {before} windows before the test"
            )));
        }
        Ok(crate::split::Split {
            train: (0..before - valid).collect(),
            valid: (before - valid..before).collect(),
            test: (before..rows).collect(),
        })
    }
}
