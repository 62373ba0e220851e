//! Shapes, dimension indices and broadcasting rules.

use crate::{Error, Result};
use smallvec::SmallVec;
use std::fmt;

/// Inline storage for dims: tensors of rank <= 6 never allocate for their shape.
pub(crate) type Dims = SmallVec<[usize; 6]>;

/// The extent of a tensor along each dimension, row-major, batch first.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub(crate) Dims);

impl Shape {
    /// The shape of a scalar (rank 0, one element).
    pub fn scalar() -> Self {
        Shape(Dims::new())
    }

    /// The extents, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major (C order) strides of a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Dims {
        let mut strides = Dims::from_elem(0, self.rank());
        let mut acc = 1;
        for i in (0..self.rank()).rev() {
            strides[i] = acc;
            acc *= self.0[i];
        }
        strides
    }

    /// Turns a possibly negative dim (`-1` = last) into an index, or an error naming the op.
    pub fn resolve_dim(&self, op: &'static str, dim: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank } else { dim };
        if d < 0 || d >= rank {
            return Err(Error::DimOutOfRange {
                op,
                dim,
                rank: self.rank(),
                shape: self.clone().into(),
            });
        }
        Ok(d as usize)
    }

    /// Resolves a list of dims, rejecting duplicates; `None` means all dims.
    pub fn resolve_dims(&self, op: &'static str, dims: Option<&[isize]>) -> Result<Dims> {
        let Some(dims) = dims else {
            return Ok((0..self.rank()).collect());
        };
        let mut out = Dims::new();
        for &d in dims {
            let r = self.resolve_dim(op, d)?;
            if out.contains(&r) {
                return Err(Error::invalid(
                    op,
                    format!("dim {d} appears more than once in {dims:?}"),
                ));
            }
            out.push(r);
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The shape two operands broadcast to (NumPy rules: align from the right; each pair of
    /// extents must be equal or one of them 1).
    pub fn broadcast(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
        if a == b {
            return Ok(a.clone());
        }
        let rank = a.rank().max(b.rank());
        let mut out = Dims::from_elem(0, rank);
        for i in 0..rank {
            let da = if i < rank - a.rank() {
                1
            } else {
                a.0[i - (rank - a.rank())]
            };
            let db = if i < rank - b.rank() {
                1
            } else {
                b.0[i - (rank - b.rank())]
            };
            out[i] = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: a.clone().into(),
                    rhs: b.clone().into(),
                    reason: format!(
                        "cannot broadcast: dim {i} of the broadcast shape has extents {da} and {db}"
                    ),
                });
            };
        }
        Ok(Shape(out))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(Dims::from_slice(d))
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(Dims::from_vec(d))
    }
}
impl From<&Vec<usize>> for Shape {
    fn from(d: &Vec<usize>) -> Self {
        Shape(Dims::from_slice(d))
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(Dims::from_slice(&d))
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape::scalar()
    }
}
impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape(Dims::from_slice(&[d]))
    }
}
impl From<Dims> for Shape {
    fn from(d: Dims) -> Self {
        Shape(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy_rules() {
        let s = Shape::broadcast("add", &[4, 1, 3].into(), &[5, 1].into()).unwrap();
        assert_eq!(s.dims(), &[4, 5, 3]);
        let e = Shape::broadcast("add", &[2, 3].into(), &[4].into()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("add: [2, 3] x [4]: cannot broadcast"),
            "{e}"
        );
    }

    #[test]
    fn resolve_dim_accepts_negative_and_rejects_out_of_range() {
        let s: Shape = [2, 3, 4].into();
        assert_eq!(s.resolve_dim("sum", -1).unwrap(), 2);
        let e = s.resolve_dim("sum", 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sum: dim 3 is out of range for a tensor of rank 3 (shape [2, 3, 4])"
        );
        assert!(s.resolve_dims("sum", Some(&[0, -3])).is_err());
    }
}
