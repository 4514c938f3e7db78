//! Element type conversions between f32 and f16 / bf16 on the device.

use streampool_core::BackendError;

use super::args::{grid_stride, invalid, launch, ptr, Elem, KArg, Slice};
use super::modules::CAST;
use crate::error;
use crate::stream::CudaStream;

/// `dst[i] = src[i]` converted from `from` to `to` for `n` elements: f32 to f16 / bf16 (round to
/// nearest even), f16 / bf16 to f32, or a plain copy when the types agree.
pub fn cast(
    stream: &CudaStream,
    src: Slice<'_>,
    from: Elem,
    dst: Slice<'_>,
    to: Elem,
    n: usize,
) -> Result<(), BackendError> {
    if n == 0 {
        return Ok(());
    }
    let ps = ptr(stream, src, n, from.size(), "cast src")?;
    let pd = ptr(stream, dst, n, to.size(), "cast dst")?;
    let name = match (from, to) {
        (Elem::F32, Elem::F16) => "cast_f32_f16",
        (Elem::F32, Elem::Bf16) => "cast_f32_bf16",
        (Elem::F16, Elem::F32) => "cast_f16_f32",
        (Elem::Bf16, Elem::F32) => "cast_bf16_f32",
        (a, b) if a == b => {
            let _submit = stream.submit()?;
            stream.bind()?;
            // SAFETY: both ranges (n elements) were checked to lie in live buffers of this
            // device; the copy is ordered on this stream.
            return unsafe {
                cudarc::driver::result::memcpy_dtod_async(
                    pd,
                    ps,
                    n * from.size(),
                    stream.cu_stream(),
                )
            }
            .map_err(error::driver("cuMemcpyDtoDAsync"));
        }
        (a, b) => return Err(invalid(format!("cast: {a:?} to {b:?} goes through F32"))),
    };
    let args = [KArg::U64(ps), KArg::U64(pd), KArg::U64(n as u64)];
    // SAFETY: cast_S_D(const S* src, D* dst, u64 n) takes these three arguments; it reads n
    // elements of src and writes n of dst, both checked above.
    unsafe { launch(stream, &CAST, name, grid_stride(stream, n), &args) }
}
