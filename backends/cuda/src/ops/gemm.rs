//! Row-major GEMM on the stream's cuBLAS handle: `C = alpha * op(A) op(B) + beta * C`, plain or
//! strided-batched, as a thin wrapper over column-major cuBLAS (a row-major matrix is its
//! transpose in column-major order, so `C^T = op(B)^T op(A)^T` is computed, swapping the operands).

use std::ffi::c_void;

use cudarc::cublas::sys::{self as blas, cublasOperation_t as Op, cudaDataType as Dt};
use streampool_core::BackendError;
use streampool_core::{GemmDims, MatMath};

use super::args::{int, invalid, ptr, Elem, Slice};
use crate::error;
use crate::stream::{CudaStream, StreamState};

/// One operand: element `(b, i, j)` of the stored row-major matrix is at `offset + b *
/// batch_stride + i * ld + j`. With `transposed`, the operand is the transpose of what is stored
/// (e.g. a `linear` weight `[out, in]` used as `[in, out]`).
#[derive(Clone, Copy, Debug)]
pub struct MatArg<'a> {
    /// Buffer and element offset of element `(0, 0, 0)`.
    pub at: Slice<'a>,
    /// Distance between stored rows (>= stored columns).
    pub ld: usize,
    /// Use the transpose of the stored matrix (not allowed for `C`).
    pub transposed: bool,
    /// Distance between consecutive matrices of a batch (ignored when `batch == 1`).
    pub batch_stride: usize,
}

impl<'a> MatArg<'a> {
    /// A dense row-major matrix of `cols` columns at `at`.
    pub fn row_major(at: impl Into<Slice<'a>>, cols: usize) -> Self {
        Self { at: at.into(), ld: cols, transposed: false, batch_stride: 0 }
    }

    /// The transpose of a dense row-major matrix of `cols` stored columns at `at`.
    pub fn transposed(at: impl Into<Slice<'a>>, cols: usize) -> Self {
        Self { at: at.into(), ld: cols, transposed: true, batch_stride: 0 }
    }

    /// The same operand with batch stride `stride`.
    pub fn batched(self, stride: usize) -> Self {
        Self { batch_stride: stride, ..self }
    }
}

fn data_type(e: Elem) -> Dt {
    match e {
        Elem::F32 => Dt::CUDA_R_32F,
        Elem::F16 => Dt::CUDA_R_16F,
        Elem::Bf16 => Dt::CUDA_R_16BF,
    }
}

/// Checks one operand whose `op()` is `[rows, cols]`; returns its device address.
fn operand(
    stream: &CudaStream,
    a: &MatArg<'_>,
    rows: usize,
    cols: usize,
    batch: usize,
    elem: Elem,
    what: &str,
) -> Result<u64, BackendError> {
    let (sr, sc) = if a.transposed { (cols, rows) } else { (rows, cols) };
    if a.ld < sc.max(1) {
        return Err(invalid(format!("{what}: ld {} below its {sc} stored columns", a.ld)));
    }
    int(what, a.ld)?;
    let extent = (|| {
        let last_batch = (batch - 1).checked_mul(a.batch_stride)?;
        let last_row = (sr - 1).checked_mul(a.ld)?;
        last_batch.checked_add(last_row)?.checked_add(sc)
    })()
    .ok_or_else(|| invalid(format!("{what}: extent overflows")))?;
    ptr(stream, a.at, extent, elem.size(), what)
}

/// The device addresses of `A`, `B` and `C` of a GEMM with `dims` (`batch`, `m`, `n` > 0), after
/// checking each operand's range; with `k == 0` cuBLAS reads neither A nor B and both are `C`'s.
pub(crate) fn checked_operands(
    stream: &CudaStream,
    dims: GemmDims,
    a: &MatArg<'_>,
    b: &MatArg<'_>,
    c: &MatArg<'_>,
    input: Elem,
    output: Elem,
) -> Result<[u64; 3], BackendError> {
    let GemmDims { batch, m, n, k } = dims;
    if c.transposed {
        return Err(invalid("gemm: C cannot be transposed"));
    }
    let pc = operand(stream, c, m, n, batch, output, "gemm C")?;
    if k == 0 {
        return Ok([pc, pc, pc]);
    }
    Ok([
        operand(stream, a, m, k, batch, input, "gemm A")?,
        operand(stream, b, k, n, batch, input, "gemm B")?,
        pc,
    ])
}

/// `C = alpha * op(A) op(B) + beta * C` in f32, without TF32: [`gemm`] with f32 operands.
#[allow(clippy::too_many_arguments)] // BLAS: every operand and scalar is explicit
pub fn gemm_f32(
    stream: &CudaStream,
    dims: GemmDims,
    alpha: f32,
    a: MatArg<'_>,
    b: MatArg<'_>,
    beta: f32,
    c: MatArg<'_>,
) -> Result<(), BackendError> {
    gemm(stream, dims, alpha, a, b, beta, c, Elem::F32, Elem::F32, MatMath::Exact)
}

/// `C = alpha * op(A) op(B) + beta * C`, row-major, on the stream's cuBLAS handle
/// (`cublasGemmEx`, or `cublasGemmStridedBatchedEx` when `dims.batch > 1`). `A` and `B` hold
/// `input` elements, `C` holds `output` elements (`input` itself or f32); arithmetic and
/// accumulation are f32 (TF32 products with [`MatMath::Tf32`] and f32 inputs).
///
/// ```no_run
/// # use streampool_core::Backend;
/// # use streampool_cuda::{ops, CudaBackend};
/// # let backend = CudaBackend::open(0)?;
/// # let stream = backend.new_stream(0)?;
/// // out[128, 1536] = x[128, 384] . w[1536, 384]^T
/// let (x, w, out) = (stream.alloc(128 * 384 * 4)?, stream.alloc(1536 * 384 * 4)?,
///                    stream.alloc(128 * 1536 * 4)?);
/// let dims = streampool_core::GemmDims { batch: 1, m: 128, n: 1536, k: 384 };
/// ops::gemm_f32(&stream, dims, 1.0, ops::MatArg::row_major(&x, 384),
///               ops::MatArg::transposed(&w, 384), 0.0, ops::MatArg::row_major(&out, 1536))?;
/// # Ok::<(), streampool_core::BackendError>(())
/// ```
#[allow(clippy::too_many_arguments)] // BLAS: every operand, scalar and type is explicit
pub fn gemm(
    stream: &CudaStream,
    dims: GemmDims,
    alpha: f32,
    a: MatArg<'_>,
    b: MatArg<'_>,
    beta: f32,
    c: MatArg<'_>,
    input: Elem,
    output: Elem,
    precision: MatMath,
) -> Result<(), BackendError> {
    let GemmDims { batch, m, n, k } = dims;
    if c.transposed {
        return Err(invalid("gemm: C cannot be transposed"));
    }
    if output != input && output != Elem::F32 {
        return Err(invalid(format!(
            "gemm: {input:?} inputs give {input:?} or F32, not {output:?}"
        )));
    }
    if batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    int("gemm m", m)?;
    int("gemm n", n)?;
    int("gemm k", k)?;
    int("gemm batch", batch)?;
    let [pa, pb, pc] = checked_operands(stream, dims, &a, &b, &c, input, output)?;
    let _submit = stream.submit()?;
    stream.bind()?;
    let mut state = stream.state();
    let call = Checked { dims, alpha, beta, a: (pa, a), b: (pb, b), c: (pc, c), input, output };
    enqueue(stream, &mut state, call, precision)
}

/// A GEMM whose operands were checked ([`checked_operands`]): device addresses with their
/// layouts, and the scalars and types.
pub(crate) struct Checked<'a> {
    pub(crate) dims: GemmDims,
    pub(crate) alpha: f32,
    pub(crate) beta: f32,
    pub(crate) a: (u64, MatArg<'a>),
    pub(crate) b: (u64, MatArg<'a>),
    pub(crate) c: (u64, MatArg<'a>),
    pub(crate) input: Elem,
    pub(crate) output: Elem,
}

/// Enqueue a checked GEMM on the stream's cuBLAS handle; the caller holds the stream's state
/// lock (`state`, bound to the stream) and has bound the context.
pub(crate) fn enqueue(
    stream: &CudaStream,
    state: &mut StreamState,
    call: Checked<'_>,
    precision: MatMath,
) -> Result<(), BackendError> {
    let Checked { dims, alpha, beta, a: (pa, a), b: (pb, b), c: (pc, c), input, output } = call;
    let GemmDims { batch, m, n, k } = dims;
    let (mi, ni, ki, bi) = (m as i32, n as i32, k as i32, batch as i32);
    let compute = match (input, precision) {
        (Elem::F32, MatMath::Tf32) => blas::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
        _ => blas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
    };
    let op = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
    let (ti, to) = (data_type(input), data_type(output));
    let stride = |x: &MatArg<'_>| x.batch_stride as i64;
    let (alpha_p, beta_p) =
        (&alpha as *const f32 as *const c_void, &beta as *const f32 as *const c_void);
    let target = stream.gemm_sm_target(input != Elem::F32 || precision == MatMath::Tf32);
    state.blas.set_sm_target(target)?;
    let handle = *state.blas.cublas().handle();
    // SAFETY: `handle` is this stream's live cuBLAS handle, used by this thread alone while we
    // hold the stream's state lock. Column-major view: C^T[n, m] = op(B)^T[n, k] op(A)^T[k, m];
    // every operand's range (batch, rows, ld, columns) was checked to lie in its buffer, the
    // leading dimensions are at least the stored columns, and alpha/beta point to host f32s that
    // live across the call (host pointer mode, the default).
    let status = unsafe {
        if batch == 1 {
            blas::cublasGemmEx(
                handle,
                op(b.transposed),
                op(a.transposed),
                ni,
                mi,
                ki,
                alpha_p,
                pb as *const c_void,
                ti,
                b.ld as i32,
                pa as *const c_void,
                ti,
                a.ld as i32,
                beta_p,
                pc as *mut c_void,
                to,
                c.ld as i32,
                compute,
                blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        } else {
            blas::cublasGemmStridedBatchedEx(
                handle,
                op(b.transposed),
                op(a.transposed),
                ni,
                mi,
                ki,
                alpha_p,
                pb as *const c_void,
                ti,
                b.ld as i32,
                stride(&b),
                pa as *const c_void,
                ti,
                a.ld as i32,
                stride(&a),
                beta_p,
                pc as *mut c_void,
                to,
                c.ld as i32,
                stride(&c),
                bi,
                compute,
                blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
    };
    status.result().map_err(|e| error::library("cublasGemmEx", format!("{e:?} for {dims:?}")))
}
