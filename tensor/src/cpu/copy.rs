//! `copy_strided` on the CPU: the strided-copy kernel over 32- or 16-bit elements.

use streampool_cpu::kernels::strided_copy;
use streampool_cpu::CpuStream;

use super::access::{kernel, slice_mut, CpuTensor, Reads};
use crate::{check, OpError};

pub(super) fn copy_strided(
    stream: &CpuStream,
    src: &CpuTensor,
    dst: &CpuTensor,
) -> Result<(), OpError> {
    check::copy_strided(src, dst)?;
    let (src, dst) = (src.clone(), dst.clone());
    Ok(stream.enqueue(move || {
        let l = *src.layout();
        let mut strides = [0isize; crate::MAX_RANK];
        for (s, &v) in strides.iter_mut().zip(l.strides()) {
            *s = isize::try_from(v).map_err(|_| format!("stride {v} too large"))?;
        }
        let strides = &strides[..l.rank()];
        let reads = Reads::lock([Some(&src)]);
        let mut guard = dst.buffer().write();
        if src.dtype().size() == 4 {
            let o = slice_mut(guard.as_u32_mut(), &dst)?;
            kernel(strided_copy(reads.words(&src)?, l.offset(), l.shape(), strides, o))
        } else {
            let o = slice_mut(guard.as_u16_mut(), &dst)?;
            kernel(strided_copy(reads.halves(&src)?, l.offset(), l.shape(), strides, o))
        }
    })?)
}
