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

/// Fold `fold` of `k` over `rows` (cross-validation): `(train, valid)`, where `valid` is about a
/// `k`-th of the rows and the `k` folds' validation parts partition `rows`. Stratified by
/// `labels` (indexed by row number) when given: each class is dealt round the folds, so every
/// fold keeps the class shares. Seeded: the same seed gives the same folds.
pub fn k_fold(
    rows: &[usize],
    k: usize,
    fold: usize,
    seed: u64,
    labels: Option<&[i64]>,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if k < 2 || k > rows.len() {
        return Err(Error::Invalid(format!(
            "cross-validation needs 2 to {} folds (one row each at least), got {k}",
            rows.len()
        )));
    }
    if fold >= k {
        return Err(Error::Invalid(format!("fold {fold} of {k} does not exist")));
    }
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for &r in rows {
        let class = labels.and_then(|l| l.get(r).copied()).unwrap_or(0);
        groups.entry(class).or_default().push(r);
    }
    let mut rng = Rng::seed(seed ^ 0x6b66_6f6c_645f_7631);
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    // Deal each class round the folds, starting where the previous class stopped, so that the
    // folds' sizes differ by at most one.
    let mut next = 0;
    for (_, mut members) in groups {
        rng.shuffle(&mut members);
        for r in members {
            if next % k == fold {
                valid.push(r);
            } else {
                train.push(r);
            }
            next += 1;
        }
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut valid);
    Ok((train, valid))
}
