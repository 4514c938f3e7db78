//! Split-K linears whose partial products the next kernel adds up.
//!
//! At batch-1 shapes (128 rows) an f32 GEMM has too few output tiles to fill the GPU, so cuBLAS
//! splits K and runs two kernels: the products of each K slice, then a `split_k` reduction pass.
//! Here the slices' products go to the stream's partials buffer, and the kernel that consumes
//! the result anyway (the bias + GELU pass, the residual add + layer norm) adds the slices up as
//! it reads them: one launch and one pass over the result fewer per linear.
//!
//! The products come from `kernels/tf32x3.cu` where it applies (compute capability 8.0 on, out
//! features a multiple of 64, K slices a multiple of 32): f32 on tensor cores, three TF32
//! products per f32 product, as accurate as cuBLAS's f32 GEMM and faster than either cuBLAS
//! path at these shapes (figures: docs/performance.md, "Split-K linears"). Elsewhere, a
//! strided-batched cuBLAS GEMM of [`PARTS`] slices.
//!
//! Only where it pays: exact f32, at most [`MAX_ROWS`] rows; the tensor-core kernel while at
//! most [`MAX_TC_LOAD`] streams share the GPU (its blocks budgeted for the stream's share), the
//! cuBLAS slices only while the stream has the GPU to itself (under load cuBLAS's GEMMs are
//! planned for the stream's share and do not split). `CudaOptions::split_k` turns it all off, as
//! does a pinned `CudaOptions::gemm_sm_target`. The partial sums are added in slice order: the
//! same result on every run.

use cudarc::driver::LaunchConfig;
use streampool_core::BackendError;
use streampool_core::{GemmDims, MatMath};

use super::args::{grid_stride, launch, mul, opt_ptr, ptr, row_config, Act, Elem, KArg, Slice};
use super::gemm::{self, checked_operands, Checked, MatArg};
use super::linear::linear;
use super::modules::{SPLIT_K, TF32X3};
use super::norm::{add_layer_norm, LayerNormArgs};
use crate::stream::CudaStream;

thread_local! {
    /// Split linears this thread has enqueued: all, and those on tensor cores.
    static SPLITS: std::cell::Cell<[u64; 2]> = const { std::cell::Cell::new([0; 2]) };
}

/// Linears enqueued split along K by the calling thread so far (diagnostics, tests).
pub fn split_k_launches() -> u64 {
    SPLITS.with(std::cell::Cell::get)[0]
}

/// Of [`split_k_launches`], those whose products ran on tensor cores (`kernels/tf32x3.cu`).
pub fn tf32x3_launches() -> u64 {
    SPLITS.with(std::cell::Cell::get)[1]
}

/// Partial products of a split linear (`MAX_PARTS` of split_k.cu): cuBLAS's split, and the
/// most slices of the tensor-core kernel.
const PARTS: usize = 8;
/// The tensor-core kernel's tile (rows, columns) and K step.
const TILE: (usize, usize, usize) = (32, 64, 32);
/// Its blocks per multiprocessor at most when choosing a split, in tenths: just above what the
/// best measured splits of MiniLM's projections ran (docs/performance.md, "Split-K linears").
const BLOCKS_PER_SM_X10: usize = 35;
/// The most streams sharing the GPU ([`CudaStream::set_gemm_load`]) at which linears still run
/// on the tensor-core kernel, their blocks budgeted for the stream's share: up to 8 streams it
/// beats cuBLAS's GEMMs planned for the share, past that cuBLAS's do better (figures:
/// docs/performance.md, "Split-K linears").
const MAX_TC_LOAD: u32 = 8;
/// Rows up to which a linear is split.
const MAX_ROWS: usize = 128;
/// Bytes of a stream's partials buffer.
const PARTS_BYTES: usize = 8 << 20;

/// How a linear is split: into how many K slices, and by which kernel.
#[derive(Clone, Copy)]
enum Plan {
    /// `kernels/tf32x3.cu`, this many slices.
    TensorCores(usize),
    /// cuBLAS strided-batched, [`PARTS`] slices.
    Blas,
}

/// How a linear of this shape is split on `stream` now; `None` for not at all.
fn plan(
    stream: &CudaStream,
    rows: usize,
    in_features: usize,
    out_features: usize,
    elem: Elem,
    precision: MatMath,
) -> Option<Plan> {
    let now = stream.split_k_enabled()
        && elem == Elem::F32
        && precision == MatMath::Exact
        && (1..=MAX_ROWS).contains(&rows)
        && !stream.gemm_sm_target_pinned();
    if !now {
        return None;
    }
    let load = stream.gemm_load();
    let (_, tile_cols, step) = TILE;
    if stream.has_tf32_mma()
        && out_features % tile_cols == 0
        && in_features % step == 0
        && load <= MAX_TC_LOAD
    {
        let sms = (stream.multiprocessors() / load) as usize;
        let slices = tc_slices(rows, in_features, out_features, sms);
        if slices * rows * out_features * 4 <= PARTS_BYTES {
            return Some(Plan::TensorCores(slices));
        }
    }
    if load > 1 {
        return None;
    }
    let blas = out_features % 4 == 0
        && in_features % PARTS == 0
        && in_features / PARTS >= 32
        && PARTS * rows * out_features * 4 <= PARTS_BYTES;
    blas.then_some(Plan::Blas)
}

/// K slices of a tensor-core linear on `sms` multiprocessors: the most (so the most blocks)
/// within the budget of blocks, each slice a whole number of K steps (`in_features` a multiple
/// of the step).
fn tc_slices(rows: usize, in_features: usize, out_features: usize, sms: usize) -> usize {
    let (tile_rows, tile_cols, step) = TILE;
    let tiles = rows.div_ceil(tile_rows) * (out_features / tile_cols);
    let budget = (sms * BLOCKS_PER_SM_X10 / 10).max(tiles);
    (1..=PARTS).rev().find(|&s| in_features % (s * step) == 0 && tiles * s <= budget).unwrap_or(1)
}

/// Enqueue the `parts` partial products of `x . w^T` (`x` `[rows, in]`, `w` `[out, in]`) into
/// the stream's partials buffer, then `consume(parts, stride, parts)` (which enqueues the kernel
/// that adds them up, `stride` elements apart), both under the stream's state lock, which guards
/// the buffer. `Ok(false)` without enqueueing anything when the linear is not split now (or the
/// buffer is still missing inside a graph capture, where nothing may be allocated).
#[allow(clippy::too_many_arguments)] // the linear's operands, extents and types, and the consumer
fn split(
    stream: &CudaStream,
    x: Slice<'_>,
    w: Slice<'_>,
    rows: usize,
    in_features: usize,
    out_features: usize,
    elem: Elem,
    precision: MatMath,
    consume: impl FnOnce(u64, usize, usize) -> Result<(), BackendError>,
) -> Result<bool, BackendError> {
    let Some(plan) = plan(stream, rows, in_features, out_features, elem, precision) else {
        return Ok(false);
    };
    let _submit = stream.submit()?;
    stream.bind()?;
    let mut state = stream.state();
    let buffer = match &state.parts {
        Some(buffer) => buffer.clone(),
        None if stream.is_capturing()? => return Ok(false),
        None => state.parts.insert(stream.alloc(PARTS_BYTES)?).clone(),
    };
    let stride = rows * out_features;
    let (pc, parts) = match plan {
        Plan::TensorCores(slices) => {
            let px = ptr(stream, x, rows * in_features, 4, "linear x")?;
            let pw = ptr(stream, w, out_features * in_features, 4, "linear w")?;
            let pc = ptr(stream, Slice::new(&buffer, 0), slices * stride, 4, "partials")?;
            if (px | pw) % 16 != 0 {
                return Err(BackendError::InvalidArgument(
                    "linear: x and w must be 16-byte aligned".into(),
                ));
            }
            let (tile_rows, tile_cols, _) = TILE;
            let config = LaunchConfig {
                grid_dim: (
                    (out_features / tile_cols) as u32,
                    rows.div_ceil(tile_rows) as u32,
                    slices as u32,
                ),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            let args = [
                KArg::U64(px),
                KArg::U64(pw),
                KArg::U64(pc),
                KArg::I32(rows as i32),
                KArg::I32(out_features as i32),
                KArg::I32(in_features as i32),
                KArg::I32((in_features / slices) as i32),
            ];
            // SAFETY: gemm_tf32x3_parts(const float* x, const float* w, float* parts, int m,
            // int n, int k, int kslice) takes these seven arguments; x holds rows * in and w
            // out * in f32s, 16-byte aligned (checked above); parts holds slices * rows * out
            // (checked); out % 64 == 0 and kslice % 32 == 0 (the plan), the grid (out / 64,
            // ceil(rows / 32), slices) and 128 threads as the kernel requires; sizes fit an int
            // (rows <= 128, the partials buffer bounds rows * out).
            unsafe { launch(stream, &TF32X3, "gemm_tf32x3_parts", config, &args)? };
            (pc, slices)
        }
        Plan::Blas => {
            let slice = in_features / PARTS;
            let dims = GemmDims { batch: PARTS, m: rows, n: out_features, k: slice };
            let a = MatArg { at: x, ld: in_features, transposed: false, batch_stride: slice };
            let b = MatArg { at: w, ld: in_features, transposed: true, batch_stride: slice };
            let c = MatArg {
                at: Slice::new(&buffer, 0),
                ld: out_features,
                transposed: false,
                batch_stride: stride,
            };
            let [pa, pb, pc] = checked_operands(stream, dims, &a, &b, &c, elem, Elem::F32)?;
            let (a, b, c) = ((pa, a), (pb, b), (pc, c));
            let call =
                Checked { dims, alpha: 1.0, beta: 0.0, a, b, c, input: elem, output: Elem::F32 };
            gemm::enqueue(stream, &mut state, call, precision)?;
            (pc, PARTS)
        }
    };
    consume(pc, stride, parts)?;
    let tc = u64::from(matches!(plan, Plan::TensorCores(_)));
    SPLITS.with(|n| n.set([n.get()[0] + 1, n.get()[1] + tc]));
    Ok(true)
}

/// `out = act(x . w^T + bias)` split along K, the parts added by the bias + activation pass;
/// `Ok(false)` (nothing enqueued) when not split now. For [`super::linear`], which checked
/// `in_features` and the bias.
#[allow(clippy::too_many_arguments)] // F.linear's operands, activation, extents and types
pub(crate) fn linear_act(
    stream: &CudaStream,
    [x, w]: [Slice<'_>; 2],
    bias: Option<Slice<'_>>,
    act: Act,
    [rows, in_features, out_features]: [usize; 3],
    out: Slice<'_>,
    elem: Elem,
    precision: MatMath,
) -> Result<bool, BackendError> {
    let es = elem.size();
    let n = mul("linear", rows, out_features)?;
    let pb = opt_ptr(stream, bias, out_features, es, "linear bias")?;
    let po = ptr(stream, out, n, es, "linear out")?;
    let name = ["bias_act_parts_f32", "bias_act_parts_f16", "bias_act_parts_bf16"][elem as usize];
    split(stream, x, w, rows, in_features, out_features, elem, precision, |parts, stride, np| {
        let args = [
            KArg::U64(parts),
            KArg::U64(stride as u64),
            KArg::I32(np as i32),
            KArg::U64(pb),
            KArg::U64(po),
            KArg::U64(n as u64),
            KArg::U64(out_features as u64),
            KArg::I32(act.code()),
        ];
        // SAFETY: bias_act_parts_T(const float* parts, u64 stride, int nparts, const T* bias,
        // T* out, u64 n, u64 cols, int act) takes these eight arguments; the parts buffer holds
        // np (<= PARTS = MAX_PARTS) slices of n = stride f32s, 256-byte aligned with
        // stride % 4 == 0 (cols % 4 == 0), written just before in stream order; out holds n
        // elements and the bias (or null) cols, checked above; the kernel is a grid-stride loop
        // over n / 4.
        unsafe { launch(stream, &SPLIT_K, name, grid_stride(stream, n / 4), &args) }
    })
}

/// `out[r] = LayerNorm(x[r] . w^T + bias + residual[r])` (`x` `[rows, in]`, `w` `[out, in]`,
/// `bias` `[out]` and `residual` `[rows, out]` optional, `out` `[rows, out]`, dense, out at most
/// 8192): the linear without its bias, then [`add_layer_norm`] — where the split applies (small
/// row counts, few streams sharing the GPU), the linear split along K and its parts added up by
/// the layer norm, else through `scratch` (`[rows, out]`). Everything is checked before anything is
/// enqueued.
#[allow(clippy::too_many_arguments)] // the fused op's operands, the norm, extents and types
pub fn linear_add_layer_norm(
    stream: &CudaStream,
    x: Slice<'_>,
    w: Slice<'_>,
    bias: Option<Slice<'_>>,
    residual: Option<Slice<'_>>,
    norm: LayerNormArgs<'_>,
    [rows, in_features, out_features]: [usize; 3],
    scratch: Slice<'_>,
    out: Slice<'_>,
    elem: Elem,
    precision: MatMath,
) -> Result<(), BackendError> {
    let es = elem.size();
    let n = mul("linear_add_layer_norm", rows, out_features)?;
    ptr(stream, x, mul("linear_add_layer_norm", rows, in_features)?, es, "linear x")?;
    ptr(stream, w, mul("linear_add_layer_norm", out_features, in_features)?, es, "linear w")?;
    ptr(stream, scratch, n, es, "linear_add_layer_norm scratch")?;
    let pr = opt_ptr(stream, residual, n, es, "add_layer_norm residual")?;
    let pbias = opt_ptr(stream, bias, out_features, es, "add_layer_norm bias")?;
    let pg = ptr(stream, norm.gamma, out_features, es, "layer_norm gamma")?;
    let pbeta = ptr(stream, norm.beta, out_features, es, "layer_norm beta")?;
    let po = ptr(stream, out, n, es, "add_layer_norm out")?;
    // A block per row as the plain layer norm, but a thread per element (up to 1,024): each
    // element is PARTS loads, so more threads keep more of them in flight.
    let mut config: LaunchConfig = row_config(rows, out_features, "add_layer_norm")?;
    config.block_dim.0 = (out_features.div_ceil(32) * 32).clamp(32, 1024) as u32;
    let name =
        ["add_layer_norm_parts_f32", "add_layer_norm_parts_f16", "add_layer_norm_parts_bf16"]
            [elem as usize];
    let fused = split(
        stream,
        x,
        w,
        rows,
        in_features,
        out_features,
        elem,
        precision,
        |parts, stride, np| {
            let args = [
                KArg::U64(parts),
                KArg::U64(stride as u64),
                KArg::I32(np as i32),
                KArg::U64(pr),
                KArg::U64(pbias),
                KArg::U64(pg),
                KArg::U64(pbeta),
                KArg::U64(po),
                KArg::I32(out_features as i32),
                KArg::F32(norm.eps),
            ];
            // SAFETY: add_layer_norm_parts_T(const float* parts, u64 stride, int nparts,
            // const T* residual, const T* bias, const T* gamma, const T* beta, T* out, int dim,
            // float eps) takes these ten arguments; block r reads row r (dim f32s) of each of
            // the np (<= MAX_PARTS) slices (stride = rows * dim apart, written just before in
            // stream order) and of residual, and writes row r of out (rows * dim elements,
            // checked above), dim of bias/gamma/beta; dim <= 8 * threads (row_config's limit,
            // dim <= 8192, and at least as many threads as it gives; dim fits an int).
            unsafe { launch(stream, &SPLIT_K, name, config, &args) }
        },
    )?;
    if !fused {
        linear(
            stream,
            x,
            w,
            None,
            Act::Identity,
            rows,
            in_features,
            out_features,
            scratch,
            elem,
            precision,
        )?;
        add_layer_norm(stream, scratch, residual, bias, norm, rows, out_features, out, elem)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tc_slices;

    #[test]
    fn minilm_projections_split_as_measured_best_on_132_multiprocessors() {
        // 128 rows on 132 multiprocessors: QKV, attention output, intermediate, down.
        let full = [[384, 1152], [384, 384], [384, 1536], [1536, 384]]
            .map(|[k, n]| tc_slices(128, k, n, 132));
        assert_eq!(full, [6, 6, 4, 8]);
        // A quarter of the GPU (4 streams) and an eighth (8).
        assert_eq!([384, 1536].map(|k| tc_slices(128, k, 384, 33)), [4, 4]);
        assert_eq!([384, 1536].map(|k| tc_slices(128, k, 1152, 16)), [1, 1]);
        // One row: 6 tiles of 1 x 384, so the most slices that divide K into 32-wide steps.
        assert_eq!(tc_slices(1, 384, 384, 132), 6);
        assert_eq!(tc_slices(1, 1536, 384, 132), 8);
        // Never more slices than whole K steps allow.
        assert_eq!(tc_slices(128, 32, 384, 132), 1);
        assert_eq!(tc_slices(128, 96, 384, 132), 3);
    }
}
