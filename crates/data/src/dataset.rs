//! In-memory datasets: features `x: [n, ...]` (f32) and targets `y` (`[n]` i64 class indices or
//! `[n, k]` f32 values), with row selection for splits and batches.

use crate::csv::{Table, Target};
use crate::error::{Error, Result};
use crate::idx::IdxArray;
use nabla_core::{DType, Tensor};

/// More classes than this and [`Dataset::class_counts`] does not count them.
pub const MAX_COUNTED_CLASSES: usize = 1 << 20;

/// Features and targets held in memory, the examples' class labels where the targets are
/// something else (an autoencoder's targets are its inputs), and their names where the data
/// names them (a folder's image files).
#[derive(Debug, Clone)]
pub struct Dataset {
    x: Tensor,
    y: Tensor,
    labels: Option<Vec<i64>>,
    names: Option<Vec<String>>,
}

impl Dataset {
    /// A dataset from features `[n, ...]` and targets `[n]` or `[n, ...]`.
    pub fn new(x: Tensor, y: Tensor) -> Result<Dataset> {
        if x.rank() == 0 || y.rank() == 0 || x.dims()[0] != y.dims()[0] {
            return Err(Error::Invalid(format!(
                "dataset: features {} and targets {} must have the same number of rows (dim 0)",
                x.shape(),
                y.shape()
            )));
        }
        Ok(Dataset {
            x,
            y,
            labels: None,
            names: None,
        })
    }

    /// A dataset from a CSV table: features `[n, width]` f32; class indices `[n]` i64 or
    /// values `[n, 1]` f32.
    pub fn from_table(table: &Table) -> Result<Dataset> {
        let n = table.rows;
        let features: Vec<f32> = table.features.iter().map(|&v| v as f32).collect();
        let x = Tensor::from_vec(features, [n, table.width()])?;
        let y = match &table.target {
            Target::Classes(c) => Tensor::from_vec(c.clone(), [n])?,
            Target::Values(v) => Tensor::from_vec(v.clone(), [n, 1])?.to_dtype(DType::F32)?,
            Target::None => {
                return Err(Error::Invalid(
                    "dataset: the table has no target column".into(),
                ));
            }
        };
        Dataset::new(x, y)
    }

    /// Images and labels from IDX arrays (MNIST): `x: [n, 1, rows, cols]` scaled to `[0, 1]` by
    /// `/ 255`, `y: [n]` i64.
    pub fn from_idx(images: &IdxArray, labels: &IdxArray) -> Result<Dataset> {
        if images.dims.len() != 3 || labels.dims.len() != 1 || images.dims[0] != labels.dims[0] {
            return Err(Error::Invalid(format!(
                "IDX images {:?} and labels {:?} do not fit: expected [n, rows, cols] and [n]",
                images.dims, labels.dims
            )));
        }
        let (n, r, c) = (images.dims[0], images.dims[1], images.dims[2]);
        let pixels: Vec<f32> = images.data.iter().map(|&p| p as f32 / 255.0).collect();
        let y: Vec<i64> = labels.data.iter().map(|&l| l as i64).collect();
        Dataset::new(
            Tensor::from_vec(pixels, [n, 1, r, c])?,
            Tensor::from_vec(y, [n])?,
        )
    }

    /// The dataset with each example's class label kept beside targets that are not classes,
    /// for reports that show or score examples by class.
    pub fn with_labels(self, labels: Vec<i64>) -> Result<Dataset> {
        self.check_one_per_row("labels", labels.len())?;
        Ok(Dataset {
            labels: Some(labels),
            ..self
        })
    }

    /// The dataset with each example's name (an image's file), for reports that point at
    /// examples.
    pub fn with_names(self, names: Vec<String>) -> Result<Dataset> {
        self.check_one_per_row("names", names.len())?;
        Ok(Dataset {
            names: Some(names),
            ..self
        })
    }

    fn check_one_per_row(&self, what: &str, count: usize) -> Result<()> {
        if count != self.len() {
            return Err(Error::Invalid(format!(
                "dataset: {count} {what} for {} rows",
                self.len()
            )));
        }
        Ok(())
    }

    /// The examples' names, where the data named them.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.x.dims()[0]
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The features.
    pub fn x(&self) -> &Tensor {
        &self.x
    }

    /// The targets.
    pub fn y(&self) -> &Tensor {
        &self.y
    }

    /// The rows at `indices`, in that order (a copy).
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        let idx = Tensor::from_vec(
            indices.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            [indices.len()],
        )?;
        Ok(Dataset {
            x: self.x.index_select(0, &idx)?,
            y: self.y.index_select(0, &idx)?,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            names: self
                .names
                .as_ref()
                .map(|n| indices.iter().map(|&i| n[i].clone()).collect()),
        })
    }

    /// The rows per class, when the targets are classes: `[N]` class indices, or `[N, 1]`
    /// values that are all 0 or 1 (a binary target), counted up to the largest class present.
    /// Empty otherwise (regression, a class per step, labels past [`MAX_COUNTED_CLASSES`]).
    pub fn class_counts(&self) -> Vec<usize> {
        let y = &self.y;
        let mut counts: Vec<usize> = Vec::new();
        let mut count = |k: usize| {
            if counts.len() <= k {
                counts.resize(k + 1, 0);
            }
            counts[k] += 1;
        };
        if y.dtype() == DType::I64 && y.rank() == 1 {
            for k in y.to_vec::<i64>().unwrap_or_default() {
                // Labels past any vocabulary are not class indices to count by.
                match usize::try_from(k) {
                    Ok(k) if k < MAX_COUNTED_CLASSES => count(k),
                    _ => return Vec::new(),
                }
            }
        } else if y.dtype().is_float() && y.rank() == 2 && y.dims()[1] == 1 {
            for v in y.to_vec_f64() {
                match v {
                    0.0 => count(0),
                    1.0 => count(1),
                    _ => return Vec::new(),
                }
            }
        }
        counts
    }

    /// Class labels as a vector: the labels kept with [`with_labels`](Self::with_labels), else
    /// the targets when they are class indices.
    pub fn labels(&self) -> Option<Vec<i64>> {
        self.labels.clone().or_else(|| {
            (self.y.dtype() == DType::I64).then(|| self.y.to_vec::<i64>().expect("i64 targets"))
        })
    }
}
