//! Errors: [`ViewError`] for layout changes (no device work), [`OpError`] for ops and transfers.

use streampool_core::BackendError;

use crate::DType;

/// A view (reshape, permute, narrow, ...) or layout that cannot be made. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// More dimensions than a layout holds.
    #[error("rank {rank} exceeds the maximum of {max} dimensions")]
    RankTooLarge {
        /// The rank asked for.
        rank: usize,
        /// [`crate::MAX_RANK`].
        max: usize,
    },
    /// `reshape` of a strided view: call `contiguous` first.
    #[error("cannot reshape a non-contiguous view of shape {shape:?}; call contiguous() first")]
    NotContiguous {
        /// The view's shape.
        shape: Vec<usize>,
    },
    /// `reshape` to a shape with another number of elements.
    #[error("cannot reshape {from:?} ({} elements) into {to:?}", from.iter().product::<usize>())]
    ElementCount {
        /// The current shape.
        from: Vec<usize>,
        /// The requested shape.
        to: Vec<usize>,
    },
    /// A dimension index past the rank.
    #[error("dimension {dim} out of range for rank {rank}")]
    DimOutOfRange {
        /// The dimension asked for.
        dim: usize,
        /// The tensor's rank.
        rank: usize,
    },
    /// `narrow` past the end of a dimension.
    #[error("narrow({dim}, {start}, {len}) exceeds the dimension's size {size}")]
    NarrowOutOfRange {
        /// Dimension.
        dim: usize,
        /// First index.
        start: usize,
        /// Number of indices.
        len: usize,
        /// Size of the dimension.
        size: usize,
    },
    /// `permute` with a list that is not a permutation of `0..rank`.
    #[error("{dims:?} is not a permutation of 0..{rank}")]
    BadPermutation {
        /// The list given.
        dims: Vec<usize>,
        /// The tensor's rank.
        rank: usize,
    },
    /// `shape` and `strides` of different lengths.
    #[error("{shape} dimensions but {strides} strides")]
    StrideCount {
        /// Dimensions in the shape.
        shape: usize,
        /// Strides given.
        strides: usize,
    },
    /// A layout reaching past the end of its buffer.
    #[error("layout needs {needed} bytes but the buffer has {available}")]
    OutOfBounds {
        /// Bytes the layout addresses (up to its last element).
        needed: usize,
        /// Bytes in the buffer.
        available: usize,
    },
}

/// An op or transfer that was refused (checked before anything is enqueued) or whose submission
/// failed. Failures of work already enqueued surface later, as
/// [`BackendError::StreamFailed`] from the stream's next synchronising call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Operand shapes that do not fit the op or each other.
    #[error("{op}: {reason}")]
    Shape {
        /// The op.
        op: &'static str,
        /// What does not fit.
        reason: String,
    },
    /// An operand of the wrong element type.
    #[error("{op}: {operand} must be {expected}, got {found}")]
    DType {
        /// The op.
        op: &'static str,
        /// Which operand.
        operand: &'static str,
        /// The type the op needs.
        expected: DType,
        /// The operand's type.
        found: DType,
    },
    /// An operand that must be contiguous is a strided view.
    #[error("{op}: {operand} must be contiguous (call contiguous() first)")]
    NotContiguous {
        /// The op.
        op: &'static str,
        /// Which operand.
        operand: &'static str,
    },
    /// The output shares its buffer with an input, which this op does not allow.
    #[error("{op}: the output shares a buffer with input {operand}")]
    Aliasing {
        /// The op.
        op: &'static str,
        /// The input it shares with.
        operand: &'static str,
    },
    /// Host data whose length does not match the tensor.
    #[error("host data has {found} elements, the tensor {expected}")]
    HostLength {
        /// Elements of the tensor.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// The backend does not implement this op for these operands (an element type or a math
    /// mode it lacks).
    #[error("{op}: {reason}")]
    Unsupported {
        /// The op.
        op: &'static str,
        /// What is missing.
        reason: String,
    },
    /// A view could not be made.
    #[error(transparent)]
    View(#[from] ViewError),
    /// The backend refused (allocation, enqueue, or an earlier failure on the stream).
    #[error(transparent)]
    Backend(#[from] BackendError),
}
