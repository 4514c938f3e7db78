//! `contiguous()` on the device: gather a strided view (up to 6 dims, any 1/2/4/8-byte element)
//! into a dense row-major buffer.

use cudarc::driver::DeviceRepr;
use streampool_core::BackendError;

use super::args::{grid_stride, invalid, launch, prod, ptr, KArg, Slice};
use super::modules::STRIDED;
use crate::stream::CudaStream;

/// Most dimensions a view may have.
pub const MAX_DIMS: usize = 6;

/// `StridedParams` of strided.cu, passed by value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct StridedParams {
    offset: i64,
    n: u64,
    shape: [u64; MAX_DIMS],
    strides: [i64; MAX_DIMS],
}

// SAFETY: a `repr(C)` struct of integers whose layout matches `StridedParams` in strided.cu
// (i64, u64, u64[6], i64[6]: no padding); any bit pattern is valid.
unsafe impl DeviceRepr for StridedParams {}

/// Copy the view `src[offset + sum_d i_d * strides[d]]`, `i_d < shape[d]` (elements of
/// `elem_size` bytes: 1, 2, 4 or 8) into `dst` in row-major order. Strides may be negative
/// (flipped views) or zero (broadcasts); every reachable element is checked to lie in `src`.
pub fn strided_copy(
    stream: &CudaStream,
    src: Slice<'_>,
    shape: &[usize],
    strides: &[isize],
    dst: Slice<'_>,
    elem_size: usize,
) -> Result<(), BackendError> {
    if shape.len() != strides.len() || shape.len() > MAX_DIMS {
        return Err(invalid(format!(
            "strided_copy: {} dims and {} strides (at most {MAX_DIMS})",
            shape.len(),
            strides.len()
        )));
    }
    let name = match elem_size {
        1 => "strided_copy_b1",
        2 => "strided_copy_b2",
        4 => "strided_copy_b4",
        8 => "strided_copy_b8",
        _ => return Err(invalid(format!("strided_copy: {elem_size}-byte elements"))),
    };
    let n = prod("strided_copy", shape)?;
    if n == 0 {
        return Ok(());
    }
    // The lowest and highest element reachable from the view's start.
    let (mut lo, mut hi) = (0i128, 0i128);
    for (&e, &s) in shape.iter().zip(strides) {
        let reach = (e as i128 - 1) * s as i128;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    let start = src.offset as i128 + lo;
    if start < 0 {
        return Err(invalid(format!(
            "strided_copy: the view reaches {lo} elements before its offset"
        )));
    }
    let span = usize::try_from(hi - lo + 1).map_err(|_| invalid("strided_copy: span"))?;
    let base =
        ptr(stream, Slice::new(src.buf, start as usize), span, elem_size, "strided_copy src")?;
    let pd = ptr(stream, dst, n, elem_size, "strided_copy dst")?;
    // The kernel indexes from `base` (the lowest reachable element): offset -lo.
    let mut p = StridedParams {
        offset: (-lo) as i64,
        n: n as u64,
        shape: [1; MAX_DIMS],
        strides: [0; MAX_DIMS],
    };
    let lead = MAX_DIMS - shape.len();
    for (d, (&e, &s)) in shape.iter().zip(strides).enumerate() {
        p.shape[lead + d] = e as u64;
        p.strides[lead + d] = s as i64;
    }
    let args = [KArg::U64(base), KArg::U64(pd), KArg::Strided(p)];
    // SAFETY: strided_copy_bN(const T* src, T* dst, StridedParams p) takes these three
    // arguments (StridedParams matches the C struct); every index the kernel forms lies in
    // base[0 .. span) (checked above), and it writes dst[0 .. n).
    unsafe { launch(stream, &STRIDED, name, grid_stride(stream, n), &args) }
}
