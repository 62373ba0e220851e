//! Seeded train/validation/test splits, stratified by class when asked (each class split in the
//! same proportions, so that rare classes appear in every part).

use crate::error::{Error, Result};
use nabla_core::Rng;
use std::collections::BTreeMap;

/// Row indices of the parts of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits `n` rows into train / validation / test with the given fractions for validation and
/// test (the rest is training), shuffled by `seed`. With `labels`, each class is split
/// separately (stratified). Parts keep their rows in shuffled order.
pub fn split(
    n: usize,
    valid_fraction: f64,
    test_fraction: f64,
    seed: u64,
    labels: Option<&[i64]>,
) -> Result<Split> {
    for (name, f) in [("validation", valid_fraction), ("test", test_fraction)] {
        if !(0.0..1.0).contains(&f) {
            return Err(Error::Invalid(format!(
                "the {name} fraction must be in [0, 1), got {f}"
            )));
        }
    }
    if valid_fraction + test_fraction >= 1.0 {
        return Err(Error::Invalid(format!(
            "validation ({valid_fraction}) and test ({test_fraction}) fractions leave no training data"
        )));
    }
    if let Some(l) = labels
        && l.len() != n
    {
        return Err(Error::Invalid(format!("{} labels for {n} rows", l.len())));
    }
    let mut rng = Rng::seed(seed);
    let groups: Vec<Vec<usize>> = match labels {
        None => vec![(0..n).collect()],
        Some(labels) => {
            let mut by_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, &c) in labels.iter().enumerate() {
                by_class.entry(c).or_default().push(i);
            }
            by_class.into_values().collect()
        }
    };
    let mut out = Split {
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
    };
    for mut rows in groups {
        rng.shuffle(&mut rows);
        let m = rows.len();
        let n_test = (m as f64 * test_fraction).round() as usize;
        let n_valid = ((m as f64 * valid_fraction).round() as usize).min(m - n_test);
        out.test.extend_from_slice(&rows[..n_test]);
        out.valid.extend_from_slice(&rows[n_test..n_test + n_valid]);
        out.train.extend_from_slice(&rows[n_test + n_valid..]);
    }
    if out.train.is_empty() {
        return Err(Error::Invalid(format!(
            "the split of {n} rows leaves no training rows"
        )));
    }
    // Interleave classes again so that the parts are not sorted by class.
    for part in [&mut out.train, &mut out.valid, &mut out.test] {
        rng.shuffle(part);
    }
    Ok(out)
}
