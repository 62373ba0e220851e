//! Sequences stored long, one row per time step (as `japanese_vowels`: `series_id, t, c0..c11,
//! speaker`): grouped by an id column into examples of `[steps, channels]`, padded at the end
//! to a common length with a padding value that a recurrent layer masks out.

use crate::csv::{Table, Target};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the rows of a long table group into sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceSpec {
    /// The column that names each row's sequence.
    pub id: String,
    /// The column that orders the rows of a sequence (default: the file's order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The value that fills the steps after a sequence's end (default 0). No real step may have
    /// every channel equal to it: a masked recurrent layer would skip that step.
    #[serde(default)]
    pub pad: f64,
    /// Every sequence is padded to this many steps (default: the longest training sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
}

/// The shape of grouped sequences: what a model trained on them reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequenceShape {
    pub steps: usize,
    pub channels: usize,
    pub pad: f64,
}

impl SequenceSpec {
    /// Groups a long table into one row per sequence, `steps · channels` wide (step-major:
    /// `c0@t0, c1@t0, ..., c0@t1, ...`), sequences in order of first appearance. `steps` is
    /// the length to pad to: a trained model's; `None` takes `max_steps` or else the longest
    /// sequence here. Returns the wide table and its shape.
    pub fn group(
        &self,
        table: &Table,
        file: &str,
        steps: Option<usize>,
    ) -> Result<(Table, SequenceShape)> {
        let column = |name: &str, key: &str| {
            table
                .feature_names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{file}: data.sequence.{key} names column {name:?}, which is not among \
                         the features ({})",
                        crate::csv::listed(&table.feature_names)
                    ))
                })
        };
        let id_col = column(&self.id, "id")?;
        let step_col = self
            .step
            .as_deref()
            .map(|s| column(s, "step"))
            .transpose()?;
        let width = table.width();
        let channels: Vec<usize> = (0..width)
            .filter(|&j| j != id_col && Some(j) != step_col)
            .collect();
        if channels.is_empty() {
            return Err(Error::Invalid(format!(
                "{file}: no feature columns are left besides the sequence id and step"
            )));
        }
        if !(self.pad.is_finite()) {
            return Err(Error::Invalid(format!(
                "data.sequence.pad must be a finite number, got {}",
                self.pad
            )));
        }
        // Rows of each sequence, sequences in order of first appearance.
        let value = |r: usize, j: usize| table.features[r * width + j];
        let line = |r: usize| table.line(r);
        let mut order: Vec<u64> = Vec::new();
        let mut members: std::collections::HashMap<u64, Vec<usize>> = Default::default();
        for r in 0..table.rows {
            let id = value(r, id_col);
            if id.is_nan() {
                return Err(Error::Invalid(format!(
                    "{file}: line {}: the sequence id {:?} is missing",
                    line(r),
                    self.id
                )));
            }
            members
                .entry(id.to_bits())
                .or_insert_with(|| {
                    order.push(id.to_bits());
                    Vec::new()
                })
                .push(r);
        }
        let mut sequences: Vec<Vec<usize>> = order.iter().map(|id| members[id].clone()).collect();
        if let Some(s) = step_col {
            for rows in &mut sequences {
                rows.sort_by(|&a, &b| value(a, s).total_cmp(&value(b, s)));
                if let Some(w) = rows.windows(2).find(|w| value(w[0], s) == value(w[1], s)) {
                    return Err(Error::Invalid(format!(
                        "{file}: lines {} and {}: sequence {} has step {} twice",
                        line(w[0]),
                        line(w[1]),
                        value(w[0], id_col),
                        value(w[0], s)
                    )));
                }
            }
        }
        let longest = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let steps = steps.or(self.max_steps).unwrap_or(longest);
        if steps == 0 {
            return Err(Error::Invalid(format!("{file}: no sequences")));
        }
        let (c, t) = (channels.len(), steps);
        let mut features = vec![self.pad; sequences.len() * t * c];
        let mut classes = Vec::new();
        let mut values = Vec::new();
        for (n, rows) in sequences.iter().enumerate() {
            // The sequence's first row in the file (rows are now in step order).
            let first = *rows.iter().min().expect("a sequence has a row");
            if rows.len() > t {
                return Err(Error::Invalid(format!(
                    "{file}: sequence {} (from line {}) has {} steps, more than the {t} the \
                     model reads{}: set data.sequence.max_steps to at least {}",
                    value(first, id_col),
                    line(first),
                    rows.len(),
                    if self.max_steps.is_some() {
                        " (data.sequence.max_steps)"
                    } else {
                        " (the longest training sequence)"
                    },
                    rows.len()
                )));
            }
            for (k, &r) in rows.iter().enumerate() {
                let step = &mut features[(n * t + k) * c..(n * t + k + 1) * c];
                for (dst, &j) in step.iter_mut().zip(&channels) {
                    *dst = value(r, j);
                }
                if step.iter().all(|&v| v == self.pad) {
                    return Err(Error::Invalid(format!(
                        "{file}: line {}: every channel of this step equals the padding value \
                         {}, so a masked recurrent layer would skip it: choose another \
                         data.sequence.pad",
                        line(r),
                        self.pad
                    )));
                }
            }
            let same = |a: usize, b: usize| match &table.target {
                Target::Classes(y) => y[a] == y[b],
                Target::Values(y) => y[a] == y[b],
                Target::None => true,
            };
            if let Some(&r) = rows.iter().find(|&&r| !same(r, first)) {
                return Err(Error::Invalid(format!(
                    "{file}: line {}: the target changes within sequence {} (line {} has \
                     another): a sequence has one target",
                    line(r),
                    value(first, id_col),
                    line(first)
                )));
            }
            match &table.target {
                Target::Classes(y) => classes.push(y[first]),
                Target::Values(y) => values.push(y[first]),
                Target::None => {}
            }
        }
        let target = match &table.target {
            Target::Classes(_) => Target::Classes(classes),
            Target::Values(_) => Target::Values(values),
            Target::None => Target::None,
        };
        let feature_names = (0..t)
            .flat_map(|k| {
                channels
                    .iter()
                    .map(move |&j| format!("{}@t{k}", table.feature_names[j]))
            })
            .collect();
        Ok((
            Table {
                feature_names,
                features,
                rows: sequences.len(),
                target,
                lines: table.lines.as_ref().map(|_| {
                    sequences
                        .iter()
                        .map(|rows| line(*rows.iter().min().expect("a sequence has a row")))
                        .collect()
                }),
            },
            SequenceShape {
                steps: t,
                channels: c,
                pad: self.pad,
            },
        ))
    }
}
