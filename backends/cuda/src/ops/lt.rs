//! cuBLASLt matmuls with a fused bias epilogue (`CUBLASLT_EPILOGUE_BIAS`): a linear layer with a
//! bias is one launch instead of a GEMM and a bias pass.
//!
//! Each stream has its own cuBLASLt handle and plans (matmul descriptor, matrix layouts and the
//! heuristic's algorithm, built once per shape, strides, types, alignment and multiprocessor
//! target), in its [`StreamState`](crate::stream::StreamState), behind the stream's state
//! lock, which the matmul holds anyway for the stream's cuBLAS workspace. So a warm call
//! allocates nothing and takes no other lock, the bias pointer (the only per-call attribute) is
//! set without racing other threads, and the handle lives and dies with the stream, never with a
//! thread (thread churn creates no handles and plans, and no handle is destroyed by a thread's
//! exit while graphs captured through it replay).
//!
//! Two epilogues: bias, and bias + GELU. cuBLASLt's GELU is the tanh approximation: the
//! activation itself of some models (Gemma's `gelu_pytorch_tanh`), in every precision, and a
//! stand-in for exact (erf) GELU in f16 / bf16 only (`CudaOptions::tanh_gelu`); f32 keeps GEMM +
//! the fused exact bias-GELU kernel.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::catch_unwind;
use std::sync::OnceLock;
use streampool_core::{GemmDims, MatMath};

use cudarc::cublas::sys::cublasOperation_t as Op;
use cudarc::cublaslt::sys::{
    self as lt, cublasComputeType_t as Compute, cublasLtEpilogue_t as Epilogue,
    cublasLtMatmulDescAttributes_t as DescAttr, cublasLtMatmulPreferenceAttributes_t as PrefAttr,
    cudaDataType as Dt,
};
use streampool_core::BackendError;

use super::args::{Elem, Slice};
use super::gemm::{checked_operands, MatArg};
use crate::error;
use crate::stream::CudaStream;

/// Whether libcublasLt can be loaded (checked once per process).
fn present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to dlopen the candidate names of libcublasLt.
    *PRESENT.get_or_init(|| catch_unwind(|| unsafe { lt::is_culib_present() }).unwrap_or(false))
}

/// Everything a plan depends on (the stream, hence the device, is fixed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    ta: bool,
    tb: bool,
    elem: Elem,
    tf32: bool,
    /// Alignment (bytes, at most 256) of A, B, C and the bias: the heuristic only returns
    /// algorithms that work with pointers this aligned.
    align: [u16; 4],
    workspace: usize,
    /// Multiprocessors to plan for (0: the whole GPU).
    sm_target: u32,
    /// Bias + GELU (tanh form) instead of bias alone.
    gelu: bool,
}

/// A cuBLASLt object, destroyed with its function.
struct Owned<T: Copy> {
    raw: T,
    destroy: unsafe fn(T) -> lt::cublasStatus_t,
}

impl<T: Copy> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: `raw` was created by the matching create call and is destroyed once, here;
        // destroying a descriptor or handle is host-only. Errors at teardown are ignored.
        let _ = unsafe { (self.destroy)(self.raw) };
    }
}

fn check(call: &'static str, status: lt::cublasStatus_t) -> Result<(), BackendError> {
    if status == lt::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(error::library(call, format!("{status:?}")))
    }
}

fn layout(
    dt: Dt,
    rows: usize,
    cols: usize,
    ld: usize,
) -> Result<Owned<lt::cublasLtMatrixLayout_t>, BackendError> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: writes a new layout descriptor into `raw` (host memory only).
    let status = unsafe {
        lt::cublasLtMatrixLayoutCreate(&mut raw, dt, rows as u64, cols as u64, ld as i64)
    };
    check("cublasLtMatrixLayoutCreate", status)?;
    Ok(Owned { raw, destroy: lt::cublasLtMatrixLayoutDestroy })
}

/// Sets attribute `attr` of `desc` to `value`.
fn set_desc<T>(
    desc: lt::cublasLtMatmulDesc_t,
    attr: DescAttr,
    value: &T,
) -> Result<(), BackendError> {
    // SAFETY: `desc` is live; `value` points to a `T`, the attribute's documented type, for the
    // duration of the call (the value is copied).
    let status = unsafe {
        lt::cublasLtMatmulDescSetAttribute(
            desc,
            attr,
            value as *const T as *const c_void,
            size_of::<T>(),
        )
    };
    check("cublasLtMatmulDescSetAttribute", status)
}

/// One cached matmul: descriptors and the chosen algorithm.
struct Plan {
    // Declared before nothing that depends on it: descriptors are independent host objects.
    desc: Owned<lt::cublasLtMatmulDesc_t>,
    a: Owned<lt::cublasLtMatrixLayout_t>,
    b: Owned<lt::cublasLtMatrixLayout_t>,
    c: Owned<lt::cublasLtMatrixLayout_t>,
    algo: lt::cublasLtMatmulAlgo_t,
    /// The bias pointer currently set in `desc` (0: none yet).
    bias: u64,
}

/// One stream's cuBLASLt handle and plans
/// ([`StreamState::lt`](crate::stream::StreamState::lt), created at its first matmul).
pub(crate) struct LtState {
    // Dropped after the plans (field order).
    plans: HashMap<Key, Option<Plan>>,
    handle: Owned<lt::cublasLtHandle_t>,
}

// SAFETY: the handle and descriptors are host objects of cuBLASLt that any thread may use, one
// thread at a time; `LtState` lives in the stream's `StreamState`, reached only through the
// stream's state lock, which serialises every use.
unsafe impl Send for LtState {}

impl std::fmt::Debug for LtState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LtState").field("plans", &self.plans.len()).finish_non_exhaustive()
    }
}

impl LtState {
    /// A handle for the current (bound) context; `None` if cuBLASLt refuses to create one.
    fn new() -> Option<Self> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: creates a handle for the current (bound) context into `raw`.
        let status = unsafe { lt::cublasLtCreate(&mut raw) };
        (status == lt::cublasStatus_t::CUBLAS_STATUS_SUCCESS).then(|| Self {
            plans: HashMap::new(),
            handle: Owned { raw, destroy: lt::cublasLtDestroy },
        })
    }
}

thread_local! {
    /// cuBLASLt matmuls this thread has enqueued.
    static LAUNCHES: Cell<u64> = const { Cell::new(0) };
}

/// cuBLASLt matmuls (linears with a fused bias) enqueued by the calling thread so far: tells
/// whether `linear` took the one-launch path or fell back to GEMM + bias (diagnostics, tests).
pub fn lt_launches() -> u64 {
    LAUNCHES.with(Cell::get)
}

fn data_type(e: Elem) -> Dt {
    match e {
        Elem::F32 => Dt::CUDA_R_32F,
        Elem::F16 => Dt::CUDA_R_16F,
        Elem::Bf16 => Dt::CUDA_R_16BF,
    }
}

fn align(ptr: u64) -> u16 {
    (1u64 << ptr.trailing_zeros().min(8)) as u16
}

/// Builds the plan for `key`, or `None` when cuBLASLt has no algorithm for it.
fn plan(handle: lt::cublasLtHandle_t, key: &Key) -> Result<Option<Plan>, BackendError> {
    let compute = if key.tf32 && key.elem == Elem::F32 {
        Compute::CUBLAS_COMPUTE_32F_FAST_TF32
    } else {
        Compute::CUBLAS_COMPUTE_32F
    };
    let mut raw = std::ptr::null_mut();
    // SAFETY: writes a new matmul descriptor into `raw` (host memory only).
    check("cublasLtMatmulDescCreate", unsafe {
        lt::cublasLtMatmulDescCreate(&mut raw, compute, Dt::CUDA_R_32F)
    })?;
    let desc = Owned { raw, destroy: lt::cublasLtMatmulDescDestroy };
    let op = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
    // Column-major view, as `gemm`: D^T[n, m] = op(B)^T op(A)^T, so Lt's A is our B.
    set_desc(desc.raw, DescAttr::CUBLASLT_MATMUL_DESC_TRANSA, &op(key.tb))?;
    set_desc(desc.raw, DescAttr::CUBLASLT_MATMUL_DESC_TRANSB, &op(key.ta))?;
    let epilogue = if key.gelu {
        Epilogue::CUBLASLT_EPILOGUE_GELU_BIAS
    } else {
        Epilogue::CUBLASLT_EPILOGUE_BIAS
    };
    set_desc(desc.raw, DescAttr::CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue)?;
    if key.sm_target > 0 {
        set_desc(
            desc.raw,
            DescAttr::CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET,
            &(key.sm_target as i32),
        )?;
    }
    let dt = data_type(key.elem);
    // Stored column-major shapes: a row-major [r, c] matrix is column-major [c, r].
    let (bl_rows, bl_cols) = if key.tb { (key.k, key.n) } else { (key.n, key.k) };
    let (al_rows, al_cols) = if key.ta { (key.m, key.k) } else { (key.k, key.m) };
    let a = layout(dt, bl_rows, bl_cols, key.ldb)?;
    let b = layout(dt, al_rows, al_cols, key.lda)?;
    let c = layout(dt, key.n, key.m, key.ldc)?;
    let mut raw = std::ptr::null_mut();
    // SAFETY: writes a new preference descriptor into `raw` (host memory only).
    check("cublasLtMatmulPreferenceCreate", unsafe {
        lt::cublasLtMatmulPreferenceCreate(&mut raw)
    })?;
    let pref = Owned { raw, destroy: lt::cublasLtMatmulPreferenceDestroy };
    let set_pref = |attr: PrefAttr, value: u64| {
        // The workspace limit is a uint64_t, the alignments uint32_t.
        let small = (value as u32).to_ne_bytes();
        let wide = value.to_ne_bytes();
        let bytes: &[u8] =
            if attr == PrefAttr::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES { &wide } else { &small };
        // SAFETY: `pref` is live; the value is copied, with the attribute's size.
        let status = unsafe {
            lt::cublasLtMatmulPreferenceSetAttribute(
                pref.raw,
                attr,
                bytes.as_ptr() as *const c_void,
                bytes.len(),
            )
        };
        check("cublasLtMatmulPreferenceSetAttribute", status)
    };
    set_pref(PrefAttr::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, key.workspace as u64)?;
    // Lt's A is our B, its B our A.
    set_pref(PrefAttr::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, u64::from(key.align[1]))?;
    set_pref(PrefAttr::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, u64::from(key.align[0]))?;
    set_pref(PrefAttr::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, u64::from(key.align[2]))?;
    set_pref(PrefAttr::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, u64::from(key.align[2]))?;
    // SAFETY: a zeroed heuristic result is a valid value of this plain C struct.
    let mut result: lt::cublasLtMatmulHeuristicResult_t = unsafe { std::mem::zeroed() };
    let mut found = 0;
    // SAFETY: every descriptor is live; `result` has room for the one algorithm requested.
    let status = unsafe {
        lt::cublasLtMatmulAlgoGetHeuristic(
            handle,
            desc.raw,
            a.raw,
            b.raw,
            c.raw,
            c.raw,
            pref.raw,
            1,
            &mut result,
            &mut found,
        )
    };
    let usable = status == lt::cublasStatus_t::CUBLAS_STATUS_SUCCESS
        && found > 0
        && result.state == lt::cublasStatus_t::CUBLAS_STATUS_SUCCESS
        && result.workspaceSize <= key.workspace
        && key.align[3] >= 16;
    Ok(usable.then_some(Plan { desc, a, b, c, algo: result.algo, bias: 0 }))
}

/// `C[m, n] = op(A) op(B) + bias` (bias `[n]`, broadcast over rows; `beta = 0`), then GELU's
/// tanh approximation when `gelu`, in one cuBLASLt launch on the stream, with the stream's
/// cuBLAS workspace. Operands as [`super::gemm`]
/// (`batch` must be 1). Returns `Ok(false)` without enqueueing anything when cuBLASLt is absent
/// or refuses the problem (no algorithm, or a planning call fails); the caller then runs
/// GEMM + bias itself.
#[allow(clippy::too_many_arguments)] // the GEMM's operands, the bias and the types
pub(crate) fn matmul_bias(
    stream: &CudaStream,
    dims: GemmDims,
    a: MatArg<'_>,
    b: MatArg<'_>,
    c: MatArg<'_>,
    bias: Slice<'_>,
    elem: Elem,
    precision: MatMath,
    gelu: bool,
) -> Result<bool, BackendError> {
    let GemmDims { batch, m, n, k } = dims;
    if batch != 1 || m == 0 || n == 0 || k == 0 || !present() {
        return Ok(false);
    }
    let [pa, pb, pc] = checked_operands(stream, dims, &a, &b, &c, elem, elem)?;
    let pbias = super::args::ptr(stream, bias, n, elem.size(), "linear bias")?;
    let _submit = stream.submit()?;
    stream.bind()?;
    let mut state = stream.state();
    let (workspace, workspace_len) = state.blas.workspace();
    let key = Key {
        m,
        n,
        k,
        lda: a.ld,
        ldb: b.ld,
        ldc: c.ld,
        ta: a.transposed,
        tb: b.transposed,
        elem,
        tf32: precision == MatMath::Tf32,
        align: [align(pa), align(pb), align(pc), align(pbias)],
        workspace: workspace_len,
        sm_target: stream.gemm_sm_target(elem != Elem::F32 || precision == MatMath::Tf32),
        gelu,
    };
    let cu_stream = stream.cu_stream() as lt::cudaStream_t;
    if state.lt.is_none() {
        state.lt = LtState::new();
    }
    let Some(lt_state) = state.lt.as_mut() else { return Ok(false) };
    let handle = lt_state.handle.raw;
    let plan = match lt_state.plans.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            // A problem cuBLASLt refuses, or a planning call that fails (an attribute this
            // version lacks), takes the GEMM + bias path from then on instead of failing.
            e.insert(plan(handle, &key).unwrap_or(None))
        }
    };
    let Some(plan) = plan else { return Ok(false) };
    if plan.bias != pbias {
        set_desc(plan.desc.raw, DescAttr::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &pbias)?;
        plan.bias = pbias;
    }
    let (alpha, beta) = (1f32, 0f32);
    // SAFETY: the plan's descriptors are live and describe exactly the operands checked
    // above (shapes, leading dimensions, types; the key holds them all); the bias pointer
    // set in the descriptor holds n elements; alpha/beta are host f32s (host pointer mode)
    // that outlive the call; the workspace is this stream's cuBLAS workspace of
    // `workspace_len` bytes, used in stream order while we hold the stream's state lock, and
    // the algorithm needs no more than that (checked when planning).
    let status = unsafe {
        lt::cublasLtMatmul(
            handle,
            plan.desc.raw,
            &alpha as *const f32 as *const c_void,
            pb as *const c_void,
            plan.a.raw,
            pa as *const c_void,
            plan.b.raw,
            &beta as *const f32 as *const c_void,
            pc as *const c_void,
            plan.c.raw,
            pc as *mut c_void,
            plan.c.raw,
            &plan.algo,
            workspace as *mut c_void,
            workspace_len,
            cu_stream,
        )
    };
    check("cublasLtMatmul", status)
        .map_err(|_| error::library("cublasLtMatmul", format!("{status:?} for {dims:?}")))?;
    LAUNCHES.with(|n| n.set(n.get() + 1));
    Ok(true)
}
