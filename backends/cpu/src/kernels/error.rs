//! The one error type of the kernels: bad shapes, bad lengths, bad ids.

/// Why a kernel refused its arguments. Kernels validate every slice before touching it, so an
/// error means nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A slice is shorter (or, where an exact size is needed, of another length) than the shape
    /// says.
    #[error("{what}: expected {expected} elements, got {actual}")]
    Length {
        /// Which argument.
        what: &'static str,
        /// The length the shape implies (the minimum, for strided views).
        expected: usize,
        /// The slice's length.
        actual: usize,
    },
    /// Shape arguments that contradict each other or are out of range (zero head size, channels
    /// not divisible by groups, output length below one, ...).
    #[error("invalid shape: {0}")]
    Shape(String),
    /// An index (a token id) is not below the table's row count.
    #[error("id {id} at position {position} is out of range for a table of {rows} rows")]
    IdOutOfRange {
        /// The offending id.
        id: u32,
        /// Where it is in the id slice.
        position: usize,
        /// Rows in the table.
        rows: usize,
    },
}

/// Checks `actual == expected`.
pub(crate) fn check_len(
    what: &'static str,
    actual: usize,
    expected: usize,
) -> Result<(), KernelError> {
    if actual == expected {
        Ok(())
    } else {
        Err(KernelError::Length { what, expected, actual })
    }
}

/// Checks `actual >= expected` (strided views may sit in a larger buffer).
pub(crate) fn check_min_len(
    what: &'static str,
    actual: usize,
    expected: usize,
) -> Result<(), KernelError> {
    if actual >= expected {
        Ok(())
    } else {
        Err(KernelError::Length { what, expected, actual })
    }
}

/// `a * b`, or a shape error on overflow.
pub(crate) fn mul(a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b).ok_or_else(|| KernelError::Shape(format!("{a} * {b} overflows usize")))
}

/// Product of several extents, or a shape error on overflow.
pub(crate) fn prod(dims: &[usize]) -> Result<usize, KernelError> {
    dims.iter().try_fold(1usize, |acc, &d| mul(acc, d))
}
