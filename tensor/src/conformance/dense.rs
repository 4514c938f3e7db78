//! Cases of the row-wise and dense ops: allocation, linear (and its math modes), the layer norms,
//! L2 normalisation, strided copies.

use streampool_core::{Device, MatMath};

use super::harness::{each_dtype, Ctx};
use super::reference::{self as r, gather};
use crate::{Activation, DType, LayerNorm, OpError, Ops, Tensor};

/// `x` shapes and output features of the linear cases: MiniLM's projections (hidden 384,
/// intermediate 1536, fused QKV 1152) at batch 1..4, and odd sizes.
const LINEAR: [(&[usize], usize); 5] = [
    (&[4, 32, 384], 1536),
    (&[1, 128, 1536], 384),
    (&[1, 1, 384], 1152),
    (&[3, 7, 65], 17),
    (&[5], 3),
];

/// Row shapes of the layer-norm and L2 cases.
const ROWS: [&[usize]; 4] = [&[4, 128, 384], &[1, 1, 384], &[3, 7, 33], &[2, 5]];

/// `shape` with its last dimension replaced by `last`.
fn with_last(shape: &[usize], last: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    *s.last_mut().expect("rank >= 1") = last;
    s
}

/// [`Ops::stream_alloc`] gives buffers of at least the size asked for, each its own:
/// [`Ops::same_buffer`] tells a buffer's handles from another buffer's, and data written to one
/// is not seen in another.
pub fn stream_alloc<B: Ops>(device: &Device<B>) {
    let ctx = Ctx::new(device, DType::F32);
    let mut tensors = Vec::new();
    for (i, words) in [1usize, 3, 384, 1 << 18].into_iter().enumerate() {
        let buf = B::stream_alloc(ctx.stream(), words * 4)
            .unwrap_or_else(|e| panic!("stream_alloc of {} bytes: {e}", words * 4));
        assert!(B::buffer_len(&buf) >= words * 4, "stream_alloc({}) is too short", words * 4);
        assert!(B::same_buffer(&buf, &buf.clone()), "a buffer's clone is another buffer");
        let layout = crate::Layout::contiguous(&[words]).expect("a rank-1 layout");
        let t = Tensor::<B>::from_parts(buf, layout, DType::F32).expect("the layout fits");
        let data: Vec<f32> = (0..words).map(|w| (i * 1000 + w) as f32).collect();
        t.write_host(ctx.stream(), &data).expect("write a stream-allocated buffer");
        tensors.push((data, t));
    }
    for (i, (data, t)) in tensors.iter().enumerate() {
        for (j, (_, other)) in tensors.iter().enumerate() {
            let same = B::same_buffer(t.buffer(), other.buffer());
            assert_eq!(same, i == j, "same_buffer of buffers {i} and {j}");
        }
        assert_eq!(&t.to_host(ctx.stream()).expect("read back"), data, "buffer {i}");
    }
}

/// [`Ops::linear`] with and without bias, with and without GELU, on MiniLM's and odd shapes.
pub fn linear<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        for (seed, &(shape, outputs)) in (1..).zip(&LINEAR) {
            let inputs = *shape.last().expect("rank >= 1");
            let rows = shape.iter().product::<usize>() / inputs;
            let (x, xt) = ctx.random(shape, seed * 10);
            let (w, wt) = ctx.random(&[outputs, inputs], seed * 10 + 1);
            let (b, bt) = ctx.random(&[outputs], seed * 10 + 2);
            let out = ctx.empty(&with_last(shape, outputs));
            for (bias, act) in [
                (true, Activation::Identity),
                (true, Activation::Gelu),
                (true, Activation::Tanh),
                (true, Activation::GeluTanh),
                (false, Activation::Identity),
                (false, Activation::Tanh),
            ] {
                let bias_t = bias.then_some(&bt);
                B::linear(ctx.stream(), &xt, &wt, bias_t, act, &out)
                    .unwrap_or_else(|e| panic!("linear {shape:?} -> {outputs}: {e}"));
                let want = r::linear(&x, &w, bias.then_some(&b[..]), [rows, inputs, outputs], act);
                let what = format!("linear {shape:?} -> {outputs}, bias {bias}, {act:?}");
                ctx.check(&what, &out, &want);
            }
        }
    });
}

/// [`Ops::linear_math`]: [`MatMath::Exact`] is [`Ops::linear`]; [`MatMath::Tf32`] on f32
/// operands is close to the exact result where [`Ops::supports_tf32`], refused with
/// [`OpError::Unsupported`] elsewhere.
pub fn linear_math<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        let (shape, outputs) = (&[2, 16, 384][..], 384);
        let (x, xt) = ctx.random(shape, 21);
        let (w, wt) = ctx.random(&[outputs, 384], 22);
        let (b, bt) = ctx.random(&[outputs], 23);
        let out = ctx.empty(&with_last(shape, outputs));
        let want = r::linear(&x, &w, Some(&b), [32, 384, outputs], Activation::Gelu);
        let gelu = Activation::Gelu;
        let run = |math| B::linear_math(ctx.stream(), &xt, &wt, Some(&bt), gelu, math, &out);
        run(MatMath::Exact).unwrap_or_else(|e| panic!("linear_math Exact: {e}"));
        ctx.check("linear_math Exact", &out, &want);
        if ctx.dtype != DType::F32 {
            return; // TF32 is a mode of f32 products
        }
        let tf32 = run(MatMath::Tf32);
        match (B::supports_tf32(), tf32) {
            // TF32 rounds each operand to 10 mantissa bits: errors of about 1e-3 over 384 terms.
            (true, Ok(())) => ctx.check_within("linear_math Tf32", &out, &want, 1e-2),
            (true, Err(e)) => panic!("linear_math Tf32 refused by a backend that supports it: {e}"),
            (false, Err(OpError::Unsupported { .. })) => {}
            (false, other) => panic!("linear_math Tf32 without TF32 support gave {other:?}"),
        }
    });
}

/// [`Ops::add_layer_norm`] with each of residual and bias present or not, at MiniLM's epsilon
/// (1e-12) and PyTorch's default (1e-5).
pub fn add_layer_norm<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        for (seed, &shape) in (1..).zip(&ROWS) {
            let dim = *shape.last().expect("rank >= 1");
            let (x, xt) = ctx.random(shape, seed * 10);
            let (res, rt) = ctx.random(shape, seed * 10 + 1);
            let (b, bt) = ctx.random(&[dim], seed * 10 + 2);
            let [(gamma, gt), (beta, bet)] = ctx.norm_params(dim, seed * 10 + 3);
            let out = ctx.empty(shape);
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            for (residual, bias, eps) in [
                (true, true, 1e-12),
                (true, false, 1e-5),
                (false, true, 1e-12),
                (false, false, 1e-5),
            ] {
                let norm = LayerNorm { gamma: &gt, beta: &bet, eps };
                let (rs, bs) = (residual.then_some(&rt), bias.then_some(&bt));
                B::add_layer_norm(ctx.stream(), &xt, rs, bs, norm, &out)
                    .unwrap_or_else(|e| panic!("add_layer_norm {shape:?}: {e}"));
                let (rr, br) = (residual.then_some(&res[..]), bias.then_some(&b[..]));
                let want = r::add_layer_norm(&x64, rr, br, &gamma, &beta, eps);
                let what = format!("add_layer_norm {shape:?}, residual {residual}, bias {bias}");
                ctx.check(&what, &out, &want);
            }
        }
    });
}

/// [`Ops::linear_add_layer_norm`]: MiniLM's output projections (1536 -> 384 at 128 tokens,
/// 384 -> 384 at batch-1 sizes, where a backend may fuse) and an odd shape, with bias and
/// residual and without.
pub fn linear_add_layer_norm<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        let cases: [(&[usize], usize); 3] =
            [(&[1, 128, 1536], 384), (&[2, 1, 384], 384), (&[3, 7, 65], 17)];
        for (seed, &(shape, outputs)) in (1..).zip(&cases) {
            let inputs = *shape.last().expect("rank >= 1");
            let rows = shape.iter().product::<usize>() / inputs;
            let out_shape = with_last(shape, outputs);
            let (x, xt) = ctx.random(shape, seed * 10);
            let (w, wt) = ctx.random(&[outputs, inputs], seed * 10 + 1);
            let (b, bt) = ctx.random(&[outputs], seed * 10 + 2);
            let (res, rt) = ctx.random(&out_shape, seed * 10 + 3);
            let [(gamma, gt), (beta, bet)] = ctx.norm_params(outputs, seed * 10 + 4);
            let (scratch, out) = (ctx.empty(&out_shape), ctx.empty(&out_shape));
            let product = r::linear(&x, &w, None, [rows, inputs, outputs], Activation::Identity);
            for with in [true, false] {
                let norm = LayerNorm { gamma: &gt, beta: &bet, eps: 1e-12 };
                let (bs, rs) = (with.then_some(&bt), with.then_some(&rt));
                B::linear_add_layer_norm(
                    ctx.stream(),
                    &xt,
                    &wt,
                    MatMath::Exact,
                    bs,
                    rs,
                    norm,
                    &scratch,
                    &out,
                )
                .unwrap_or_else(|e| panic!("linear_add_layer_norm {shape:?} -> {outputs}: {e}"));
                let (br, rr) = (with.then_some(&b[..]), with.then_some(&res[..]));
                let want = r::add_layer_norm(&product, rr, br, &gamma, &beta, 1e-12);
                let what = format!(
                    "linear_add_layer_norm {shape:?} -> {outputs}, bias and residual {with}"
                );
                ctx.check(&what, &out, &want);
            }
        }
    });
}

/// [`Ops::l2_normalize`] into another tensor and in place, a zero row included (it stays zero).
pub fn l2_normalize<B: Ops>(device: &Device<B>) {
    each_dtype(device, |ctx| {
        for (seed, &shape) in (1..).zip(&ROWS) {
            let dim = *shape.last().expect("rank >= 1");
            let mut x = ctx.data(shape.iter().product(), seed);
            x[..dim].fill(0.0);
            let want = r::l2_normalize(&x, dim);
            let xt = ctx.tensor(&x, shape);
            let out = ctx.empty(shape);
            B::l2_normalize(ctx.stream(), &xt, &out)
                .unwrap_or_else(|e| panic!("l2_normalize {shape:?}: {e}"));
            ctx.check(&format!("l2_normalize {shape:?}"), &out, &want);
            B::l2_normalize(ctx.stream(), &xt, &xt)
                .unwrap_or_else(|e| panic!("l2_normalize in place {shape:?}: {e}"));
            ctx.check(&format!("l2_normalize in place {shape:?}"), &xt, &want);
        }
    });
}

/// Views of a contiguous tensor of `shape`, each a transform of it (permutes, transposes,
/// narrows; a narrow of the first dimension is contiguous at an offset).
type View<B> = fn(&Tensor<B>) -> Result<Tensor<B>, crate::ViewError>;

/// [`Ops::copy_strided`] gathers views of every kind into contiguous tensors, bit for bit, for
/// each float type of the backend and u32.
pub fn copy_strided<B: Ops>(device: &Device<B>) {
    let views: [(&[usize], &str, View<B>); 6] = [
        (&[4, 128, 12, 32], "heads split (permute 0 2 1 3)", |t| t.permute(&[0, 2, 1, 3])),
        (&[7, 5], "transpose", |t| t.transpose(0, 1)),
        (&[4, 9], "narrow columns", |t| t.narrow(1, 2, 3)),
        (&[4, 9], "narrow rows (offset)", |t| t.narrow(0, 1, 2)),
        (&[3, 5, 6], "narrow then permute", |t| t.narrow(2, 1, 4)?.permute(&[2, 0, 1])),
        (&[2, 3], "contiguous", |t| Ok(t.clone())),
    ];
    let dtypes = B::float_dtypes().iter().copied().chain([DType::U32]);
    for dtype in dtypes {
        let ctx = Ctx::new(device, if dtype == DType::U32 { DType::F32 } else { dtype });
        for (seed, &(shape, name, view)) in (1..).zip(&views) {
            let n: usize = shape.iter().product();
            let what = format!("copy_strided {name} of {shape:?} [{dtype}]");
            // The values as bits: the copy must not change a single one.
            let (src, bits) = if dtype == DType::U32 {
                let ids: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
                (ctx.u32_tensor(&ids, shape), ids)
            } else {
                let data = ctx.data(n, seed);
                let bits = data.iter().map(|v| v.to_bits()).collect();
                (ctx.tensor(&data, shape), bits)
            };
            let v = view(&src).unwrap_or_else(|e| panic!("{what}: the view: {e}"));
            let want = gather(&bits, v.layout());
            let dst = ctx.empty_of(dtype, v.shape());
            B::copy_strided(ctx.stream(), &v, &dst).unwrap_or_else(|e| panic!("{what}: {e}"));
            let got: Vec<u32> = if dtype == DType::U32 {
                dst.to_host_u32(ctx.stream()).expect("read back")
            } else {
                ctx.read(&dst).iter().map(|v| v.to_bits()).collect()
            };
            assert!(got == want, "{what}: the copy differs from the view's elements");
        }
    }
}
