//! Argument types shared by the ops, their validation, and the one kernel-launch helper.

use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use streampool_core::BackendError;

use crate::buffer::CudaBuffer;
use crate::error;
use crate::kernels::Module;
use crate::stream::CudaStream;

/// Storage type of an op's floating-point operands; arithmetic is f32 in every case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Elem {
    /// 32-bit float.
    #[default]
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl Elem {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::F16 | Elem::Bf16 => 2,
        }
    }
}

/// Activation applied at the end of an op.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Act {
    /// None.
    #[default]
    Identity,
    /// Exact (erf) GELU, PyTorch's default.
    Gelu,
    /// `tanh`.
    Tanh,
    /// GELU's tanh approximation.
    GeluTanh,
}

impl Act {
    pub(crate) fn code(self) -> i32 {
        match self {
            Act::Identity => 0,
            Act::Gelu => 1,
            Act::Tanh => 2,
            Act::GeluTanh => 3,
        }
    }
}

/// A buffer and the element offset where an operand starts (elements of the op's type).
#[derive(Clone, Copy, Debug)]
pub struct Slice<'a> {
    /// The buffer.
    pub buf: &'a CudaBuffer,
    /// Offset in elements.
    pub offset: usize,
}

impl<'a> Slice<'a> {
    /// `buf` from element `offset`.
    pub fn new(buf: &'a CudaBuffer, offset: usize) -> Self {
        Self { buf, offset }
    }
}

impl<'a> From<&'a CudaBuffer> for Slice<'a> {
    fn from(buf: &'a CudaBuffer) -> Self {
        Self { buf, offset: 0 }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> BackendError {
    BackendError::InvalidArgument(message.into())
}

/// `a * b`, or an error naming `what` on overflow.
pub(crate) fn mul(what: &str, a: usize, b: usize) -> Result<usize, BackendError> {
    a.checked_mul(b).ok_or_else(|| invalid(format!("{what}: {a} * {b} overflows")))
}

/// Product of extents, or an error on overflow.
pub(crate) fn prod(what: &str, dims: &[usize]) -> Result<usize, BackendError> {
    dims.iter().try_fold(1usize, |acc, &d| mul(what, acc, d))
}

/// The device address of `elems` elements of `size` bytes at `s`, after checking that the
/// buffer belongs to the stream's device and holds them.
pub(crate) fn ptr(
    stream: &CudaStream,
    s: Slice<'_>,
    elems: usize,
    size: usize,
    what: &str,
) -> Result<u64, BackendError> {
    stream.check_device(s.buf)?;
    let start = mul(what, s.offset, size)?;
    let len = mul(what, elems, size)?;
    s.buf.check_range(start, len).map_err(|e| invalid(format!("{what}: {e}")))?;
    Ok(s.buf.device_ptr() + start as u64)
}

/// [`ptr`] of an optional operand; 0 (a null pointer for the kernel) when absent.
pub(crate) fn opt_ptr(
    stream: &CudaStream,
    s: Option<Slice<'_>>,
    elems: usize,
    size: usize,
    what: &str,
) -> Result<u64, BackendError> {
    s.map_or(Ok(0), |s| ptr(stream, s, elems, size, what))
}

/// `n` as a kernel's `int`, or an error.
pub(crate) fn int(what: &str, n: usize) -> Result<i32, BackendError> {
    i32::try_from(n).map_err(|_| invalid(format!("{what} = {n} exceeds i32")))
}

/// One kernel argument, by value.
#[derive(Clone, Copy)]
pub(crate) enum KArg {
    /// A device pointer (0 for null) or an `unsigned long long`.
    U64(u64),
    /// An `int`.
    I32(i32),
    /// A `float`.
    F32(f32),
    /// A struct passed by value.
    Strided(super::strided::StridedParams),
    /// A struct passed by value.
    Conv(super::conv1d::ConvParams),
}

fn push<'a, T: DeviceRepr>(b: &mut cudarc::driver::LaunchArgs<'a>, v: &'a T) {
    b.arg(v);
}

/// Launch `function` of `module` on the stream.
///
/// # Safety
/// `args` must match the kernel's parameter list in number, order and type, and every pointer in
/// them must be valid, for the duration of the kernel, for every access the kernel makes with
/// this `config` and these sizes (the ops check their ranges first).
pub(crate) unsafe fn launch(
    stream: &CudaStream,
    module: &Module,
    function: &str,
    config: LaunchConfig,
    args: &[KArg],
) -> Result<(), BackendError> {
    stream.kernels().with(stream.context(), module, function, |func| {
        // Admitted after the kernel is loaded: a first-use compile never holds up a capture.
        let _submit = stream.submit()?;
        let mut b = stream.raw().launch_builder(func);
        for a in args {
            match a {
                KArg::U64(v) => push(&mut b, v),
                KArg::I32(v) => push(&mut b, v),
                KArg::F32(v) => push(&mut b, v),
                KArg::Strided(v) => push(&mut b, v),
                KArg::Conv(v) => push(&mut b, v),
            }
        }
        // SAFETY: the caller guarantees that the arguments match the kernel and that every
        // pointer is valid for its accesses.
        unsafe { b.launch(config) }.map_err(error::driver("cuLaunchKernel"))?;
        Ok(())
    })
}

/// Grid of 256-thread blocks for a grid-stride kernel over `n` elements: one element per thread,
/// at most 8 blocks per multiprocessor.
pub(crate) fn grid_stride(stream: &CudaStream, n: usize) -> LaunchConfig {
    let max_blocks = u64::from(stream.multiprocessors()) * 8;
    let blocks = (n as u64).div_ceil(256).clamp(1, max_blocks) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// Values per thread of the row kernels (`VPT` in common.cuh).
const VPT: usize = 8;

/// One block per row of `dim` held in registers: threads for `dim`, or an error past the limit.
pub(crate) fn row_config(
    rows: usize,
    dim: usize,
    what: &str,
) -> Result<LaunchConfig, BackendError> {
    if dim > VPT * 1024 {
        return Err(invalid(format!("{what}: rows of {dim} exceed {} elements", VPT * 1024)));
    }
    let rows = u32::try_from(rows).map_err(|_| invalid(format!("{what}: {rows} rows")))?;
    let threads = (dim.div_ceil(4).div_ceil(32) * 32).clamp(32, 1024) as u32;
    Ok(LaunchConfig { grid_dim: (rows, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 })
}
