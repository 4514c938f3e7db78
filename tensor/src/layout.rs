//! [`Layout`]: shape, strides (in elements) and offset of a view into a buffer. Fixed-size and
//! `Copy`, so making views and submitting ops allocates nothing.

use crate::ViewError;

/// Most dimensions a [`Layout`] holds.
pub const MAX_RANK: usize = 6;

/// Where a tensor's elements are in its buffer: element `(i_0, .., i_n)` is at
/// `offset + sum(i_d * strides[d])`, counted in elements of the tensor's dtype.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: [usize; MAX_RANK],
    strides: [usize; MAX_RANK],
    rank: usize,
    offset: usize,
}

impl Layout {
    /// Dense row-major layout of `shape` at offset 0.
    ///
    /// ```
    /// let l = streampool_tensor::Layout::contiguous(&[2, 3]).unwrap();
    /// assert_eq!(l.strides(), &[3, 1]);
    /// assert!(l.is_contiguous());
    /// ```
    pub fn contiguous(shape: &[usize]) -> Result<Self, ViewError> {
        let mut strides = [0; MAX_RANK];
        let mut acc = 1;
        for d in (0..shape.len().min(MAX_RANK)).rev() {
            strides[d] = acc;
            acc *= shape[d];
        }
        Self::new(shape, &strides[..shape.len().min(MAX_RANK)], 0)
    }

    /// A layout from its parts; `shape` and `strides` have the same length, at most
    /// [`MAX_RANK`].
    pub fn new(shape: &[usize], strides: &[usize], offset: usize) -> Result<Self, ViewError> {
        let rank = shape.len();
        if rank > MAX_RANK {
            return Err(ViewError::RankTooLarge { rank, max: MAX_RANK });
        }
        if strides.len() != rank {
            return Err(ViewError::StrideCount { shape: rank, strides: strides.len() });
        }
        let mut layout = Layout { shape: [0; MAX_RANK], strides: [0; MAX_RANK], rank, offset };
        layout.shape[..rank].copy_from_slice(shape);
        layout.strides[..rank].copy_from_slice(strides);
        Ok(layout)
    }

    /// Extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape[..self.rank]
    }

    /// Distance, in elements, between neighbours along each dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides[..self.rank]
    }

    /// Index of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// One past the largest element index the layout reaches (`offset` when empty).
    pub fn end(&self) -> usize {
        if self.numel() == 0 {
            return self.offset;
        }
        self.offset
            + 1
            + self.shape().iter().zip(self.strides()).map(|(n, s)| (n - 1) * s).sum::<usize>()
    }

    /// Whether the elements are dense and row-major (strides of size-1 dimensions ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for d in (0..self.rank).rev() {
            if self.shape[d] != 1 && self.strides[d] != expected {
                return false;
            }
            expected *= self.shape[d];
        }
        true
    }

    /// The same elements with another shape; only for contiguous layouts.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self, ViewError> {
        if shape.iter().product::<usize>() != self.numel() {
            return Err(ViewError::ElementCount {
                from: self.shape().to_vec(),
                to: shape.to_vec(),
            });
        }
        if !self.is_contiguous() {
            return Err(ViewError::NotContiguous { shape: self.shape().to_vec() });
        }
        let mut l = Self::contiguous(shape)?;
        l.offset = self.offset;
        Ok(l)
    }

    /// Dimensions reordered: dimension `i` of the result is dimension `dims[i]` of `self`.
    pub fn permute(&self, dims: &[usize]) -> Result<Self, ViewError> {
        let mut seen = [false; MAX_RANK];
        let valid = dims.len() == self.rank
            && dims.iter().all(|&d| d < self.rank && !std::mem::replace(&mut seen[d], true));
        if !valid {
            return Err(ViewError::BadPermutation { dims: dims.to_vec(), rank: self.rank });
        }
        let mut l = *self;
        for (i, &d) in dims.iter().enumerate() {
            l.shape[i] = self.shape[d];
            l.strides[i] = self.strides[d];
        }
        Ok(l)
    }

    /// Dimensions `a` and `b` swapped.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self, ViewError> {
        for dim in [a, b] {
            self.check_dim(dim)?;
        }
        let mut l = *self;
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }

    /// Indices `start..start + len` of dimension `dim`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self, ViewError> {
        self.check_dim(dim)?;
        let size = self.shape[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(ViewError::NarrowOutOfRange { dim, start, len, size });
        }
        let mut l = *self;
        l.shape[dim] = len;
        if len > 0 {
            l.offset += start * self.strides[dim];
        }
        Ok(l)
    }

    fn check_dim(&self, dim: usize) -> Result<(), ViewError> {
        if dim < self.rank {
            Ok(())
        } else {
            Err(ViewError::DimOutOfRange { dim, rank: self.rank })
        }
    }
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("shape", &self.shape())
            .field("strides", &self.strides())
            .field("offset", &self.offset)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_compose() {
        let l = Layout::contiguous(&[2, 3, 4]).unwrap();
        let t = l.transpose(0, 2).unwrap();
        assert_eq!(t.shape(), &[4, 3, 2]);
        assert_eq!(t.strides(), &[1, 4, 12]);
        assert!(!t.is_contiguous());
        assert!(matches!(t.reshape(&[24]), Err(ViewError::NotContiguous { .. })));
        let n = l.narrow(1, 1, 2).unwrap();
        assert_eq!((n.offset(), n.shape()), (4, &[2, 2, 4][..]));
        assert_eq!(n.end(), 4 + 1 + 12 + 4 + 3);
        assert!(l.narrow(1, 2, 2).is_err());
        assert!(l.permute(&[0, 0, 1]).is_err());
        assert_eq!(l.permute(&[2, 0, 1]).unwrap().strides(), &[1, 12, 4]);
        assert!(l.reshape(&[6, 4]).unwrap().is_contiguous());
        assert!(matches!(l.reshape(&[5]), Err(ViewError::ElementCount { .. })));
        assert!(Layout::contiguous(&[1; 7]).is_err());
    }
}
