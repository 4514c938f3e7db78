//! Extents and hyper-parameters of ops that every backend implements, defined once so that the
//! CPU kernels, the CUDA ops and the tensor layer agree on their meaning and on their checks.
//! Each layer turns a [`Conv1dError`] into its own error type.

/// Extents of a conv1d call: `input [batch, in_channels, length]`,
/// `weight [out_channels, in_channels / groups, kernel]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dShape {
    /// Batch size `B`.
    pub batch: usize,
    /// Input channels `Cin`.
    pub in_channels: usize,
    /// Input length `L`.
    pub length: usize,
    /// Output channels `Cout`.
    pub out_channels: usize,
    /// Kernel size `K` (taps).
    pub kernel: usize,
}

/// Conv1d hyper-parameters, as PyTorch `nn.Conv1d`'s arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dParams {
    /// Step between output positions (>= 1).
    pub stride: usize,
    /// Zeros added on each side.
    pub padding: usize,
    /// Spacing between kernel taps (>= 1).
    pub dilation: usize,
    /// Channel groups (divides both channel counts).
    pub groups: usize,
}

impl Default for Conv1dParams {
    fn default() -> Self {
        Self { stride: 1, padding: 0, dilation: 1, groups: 1 }
    }
}

/// Why a conv1d's shape and parameters leave no valid output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conv1dError {
    /// Stride, dilation, groups or kernel size is zero.
    #[error("stride, dilation, groups and kernel must be >= 1")]
    Zero,
    /// The groups do not divide both channel counts.
    #[error("channels {in_channels} -> {out_channels} not divisible by {groups} groups")]
    Groups {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Channel groups.
        groups: usize,
    },
    /// The padded input is shorter than the kernel's span `dilation (kernel - 1) + 1`.
    #[error("input of {padded} shorter than the kernel span {span}")]
    TooShort {
        /// `length + 2 padding`.
        padded: usize,
        /// `dilation (kernel - 1) + 1`.
        span: usize,
    },
    /// `length + 2 padding` or the kernel span overflows `usize`.
    #[error("length, padding or kernel span overflows usize")]
    Overflow,
}

impl Conv1dParams {
    /// Output length for an input of `length` and a kernel of `kernel` taps:
    /// `(length + 2 padding - dilation (kernel - 1) - 1) / stride + 1`, or the reason there is
    /// none. Channel counts are not looked at (see [`Conv1dShape::out_len`]).
    pub fn try_out_len(&self, length: usize, kernel: usize) -> Result<usize, Conv1dError> {
        self.check_nonzero(kernel)?;
        self.span_out_len(length, kernel)
    }

    /// [`Conv1dParams::try_out_len`] without the reason: `None` when the parameters are invalid
    /// or leave no output.
    pub fn out_len(&self, length: usize, kernel: usize) -> Option<usize> {
        self.try_out_len(length, kernel).ok()
    }

    fn check_nonzero(&self, kernel: usize) -> Result<(), Conv1dError> {
        if self.stride == 0 || self.dilation == 0 || self.groups == 0 || kernel == 0 {
            return Err(Conv1dError::Zero);
        }
        Ok(())
    }

    /// The output length once `check_nonzero` has passed (so `kernel - 1` and the division by
    /// `stride` are defined).
    fn span_out_len(&self, length: usize, kernel: usize) -> Result<usize, Conv1dError> {
        let span = self
            .dilation
            .checked_mul(kernel - 1)
            .and_then(|s| s.checked_add(1))
            .ok_or(Conv1dError::Overflow)?;
        let padded = self
            .padding
            .checked_mul(2)
            .and_then(|p| p.checked_add(length))
            .ok_or(Conv1dError::Overflow)?;
        if padded < span {
            return Err(Conv1dError::TooShort { padded, span });
        }
        Ok((padded - span) / self.stride + 1)
    }
}

impl Conv1dShape {
    /// Output length `Lout` (see [`Conv1dParams::try_out_len`]), after checking that `p.groups`
    /// divides both channel counts.
    pub fn out_len(&self, p: &Conv1dParams) -> Result<usize, Conv1dError> {
        p.check_nonzero(self.kernel)?;
        if self.in_channels % p.groups != 0 || self.out_channels % p.groups != 0 {
            return Err(Conv1dError::Groups {
                in_channels: self.in_channels,
                out_channels: self.out_channels,
                groups: p.groups,
            });
        }
        p.span_out_len(self.length, self.kernel)
    }
}

/// Extents of a batched GEMM: `batch` products of `op(A)` `[m, k]` by `op(B)` `[k, n]` into `C`
/// `[m, n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmDims {
    /// Independent products.
    pub batch: usize,
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
}

/// Extents of a multi-head attention call: Q, K, V and the output are
/// `[batch, seq, heads * head_dim]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// Sequences in the batch.
    pub batch: usize,
    /// Tokens per sequence (queries and keys).
    pub seq: usize,
    /// Attention heads.
    pub heads: usize,
    /// Size of one head; the model width is `heads * head_dim`. A backend may take only some
    /// sizes (the CUDA kernels: 32, 64 or 128).
    pub head_dim: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_len() {
        let s = Conv1dShape { batch: 1, in_channels: 4, length: 11, out_channels: 6, kernel: 3 };
        let p = Conv1dParams { stride: 2, padding: 2, dilation: 2, groups: 2 };
        // (11 + 4 - 5) / 2 + 1
        assert_eq!(s.out_len(&p), Ok(6));
        assert_eq!(p.out_len(11, 3), Some(6));
        assert_eq!(
            s.out_len(&Conv1dParams { groups: 4, ..p }),
            Err(Conv1dError::Groups { in_channels: 4, out_channels: 6, groups: 4 })
        );
        assert_eq!(s.out_len(&Conv1dParams { stride: 0, ..p }), Err(Conv1dError::Zero));
        assert_eq!(p.out_len(11, 0), None);
        let short = Conv1dShape { length: 2, ..s };
        let p1 = Conv1dParams::default();
        assert_eq!(short.out_len(&p1), Err(Conv1dError::TooShort { padded: 2, span: 3 }));
        let huge = Conv1dParams { padding: usize::MAX, ..p1 };
        assert_eq!(huge.try_out_len(1, 1), Err(Conv1dError::Overflow));
    }
}
