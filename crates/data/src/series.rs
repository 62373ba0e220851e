//! One time series, one row per time step in time order (as `sunspots.csv`: `year,
//! sunactivity`), turned into a supervised table for one-step-ahead forecasting: each example
//! holds the previous `window` values (`lag_window … lag_1`, oldest first, so that a reshape to
//! `[window, 1]` reads them in time order) and its target is the value that follows.
//!
//! With `difference = k` the windows hold the changes `d[t] = y[t] − y[t−k]` instead (Box &
//! Jenkins' differencing; k = 12 removes a monthly series' seasonal pattern and its trend), and
//! the forecast of a level is `ŷ[t] = y[t−k] + d̂[t]`. Its error `y[t] − ŷ[t] = d[t] − d̂[t]` is
//! the change's, so RMSE and MAE of the changes are those of the levels; only the values
//! themselves need the levels added back ([`SeriesSpec::levels`]).

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
    /// Forecast the change over this many steps, `y[t] − y[t−difference]`, rather than the
    /// value itself (0: the values). The first `difference` steps only serve as the start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub difference: usize,
}

fn is_zero(k: &usize) -> bool {
    *k == 0
}

impl SeriesSpec {
    /// The windows of `values` (the series in time order): a table of `values.len() − window`
    /// rows, row `i` holding `values[i .. i + window]` and the target `values[i + window]`;
    /// with a `difference` k, the same of the changes `values[t] − values[t − k]` (k fewer
    /// rows). `file` names the series in errors.
    pub fn windows(&self, values: &[f64], file: &str) -> Result<Table> {
        let w = self.window;
        let k = self.difference;
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
        if values.len() <= w + k {
            let differenced = if k > 0 {
                format!(" after a difference of {k}")
            } else {
                String::new()
            };
            return Err(Error::Invalid(format!(
                "{file}: the series has {} steps, too few for a window of {w} and a value to \
                 forecast{differenced}",
                values.len()
            )));
        }
        let changes: Vec<f64>;
        let values = if k > 0 {
            changes = (k..values.len())
                .map(|t| values[t] - values[t - k])
                .collect();
            &changes[..]
        } else {
            values
        };
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
            lines: None,
        })
    }

    /// The forecasts of `values`' windows (one per row of [`SeriesSpec::windows`], in the
    /// units of its targets) as levels of the series: a change forecast `d̂` of row `i` becomes
    /// `values[i + window] + d̂` (its level k steps earlier plus the change). Without a
    /// difference the forecasts are levels already.
    pub fn levels(&self, values: &[f64], forecasts: &[f64]) -> Vec<f64> {
        if self.difference == 0 {
            return forecasts.to_vec();
        }
        forecasts
            .iter()
            .zip(&values[self.window..])
            .map(|(d, before)| before + d)
            .collect()
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
