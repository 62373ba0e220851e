//! How a tensor's elements sit in its storage: shape, strides (in elements) and offset. Views
//! (transpose, broadcast, narrow, ...) only change the layout, never the data.

use crate::shape::{Dims, Shape};

/// Shape + strides + offset into a storage. Strides are in elements; a stride of 0 repeats an
/// element (broadcasting).
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub(crate) shape: Shape,
    pub(crate) strides: Dims,
    pub(crate) offset: usize,
}

impl Layout {
    /// The row-major layout of a fresh buffer.
    pub fn contiguous(shape: Shape) -> Self {
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the elements are stored in row-major order without gaps (extent-1 dims may have
    /// any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for i in (0..self.shape.rank()).rev() {
            let d = self.shape.0[i];
            if d != 1 && self.strides[i] != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// The `[offset, offset + n)` range when contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.shape.elem_count())
    }

    /// Dims permuted (`perm` must be a permutation, checked by the caller).
    pub(crate) fn permuted(&self, perm: &[usize]) -> Layout {
        Layout {
            shape: Shape(perm.iter().map(|&p| self.shape.0[p]).collect()),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// Broadcast to `target` (already checked compatible): new leading dims and extent-1 dims get
    /// stride 0.
    pub(crate) fn broadcast_to(&self, target: &Shape) -> Layout {
        let extra = target.rank() - self.shape.rank();
        let mut strides = Dims::from_elem(0, target.rank());
        for i in 0..self.shape.rank() {
            if self.shape.0[i] == target.0[i + extra] {
                strides[i + extra] = self.strides[i];
            }
        }
        Layout {
            shape: target.clone(),
            strides,
            offset: self.offset,
        }
    }

    /// The sub-range `start..start+len` of `dim` (checked by the caller).
    pub(crate) fn narrowed(&self, dim: usize, start: usize, len: usize) -> Layout {
        let mut l = self.clone();
        l.offset += start * self.strides[dim];
        l.shape.0[dim] = len;
        l
    }

    /// Same elements, new shape: a view when contiguous, `None` when the data must be copied.
    pub(crate) fn reshaped(&self, shape: &Shape) -> Option<Layout> {
        self.is_contiguous().then(|| Layout {
            strides: shape.contiguous_strides(),
            shape: shape.clone(),
            offset: self.offset,
        })
    }
}
