//! Split-K linears (`ops::linear` with an activation, `ops::linear_add_layer_norm`): split only
//! where they should be (exact f32, at most 128 rows; on tensor cores, 3xTF32, where the shape
//! allows and at most 8 streams share the GPU; by cuBLAS only for a stream alone), as accurate
//! on tensor cores as cuBLAS's f32 GEMM, the same results as the unsplit path and an f64
//! reference, per-stream partials (16 threads agree bitwise), and graph captures before and
//! after the stream's partials buffer exists. Needs a GPU: ignored by default, run with
//! `-- --include-ignored`.
#![cfg(feature = "cuda")]

mod common;

use std::sync::Barrier;
use streampool_core::MatMath;

use common::*;
use streampool_core::{Backend, BackendError, Stream};
use streampool_cuda::ops::{self, Act, Elem, LayerNormArgs};
use streampool_cuda::{CudaBackend, CudaBuffer, CudaOptions, CudaStream};

/// `out = LayerNorm(x . w^T + bias + residual)` with its operands and f64 reference.
struct Block {
    shape: [usize; 3],
    elem: Elem,
    bufs: [CudaBuffer; 6], // x, w, bias, residual, gamma, beta
    want: Vec<f64>,
}

impl Block {
    fn new(s: &CudaStream, [rows, inf, outf]: [usize; 3], elem: Elem) -> Self {
        let Storage { up, round, tol: _, down: _ } = storage(elem);
        let (x, w) = (rand(rows * inf, 21), rand(outf * inf, 22));
        let (bias, res) = (rand(outf, 23), rand(rows * outf, 24));
        let gamma: Vec<f32> = rand(outf, 25).iter().map(|v| 1.0 + 0.5 * v).collect();
        let beta = rand(outf, 26);
        let prod = matmul64(&round(&x), false, &round(&w), true, rows, outf, inf);
        let (rb, rr, rg, rbe) = (round(&bias), round(&res), round(&gamma), round(&beta));
        let mut want = Vec::new();
        for r in 0..rows {
            let row: Vec<f64> = (0..outf)
                .map(|c| prod[r * outf + c] + rb[c] as f64 + rr[r * outf + c] as f64)
                .collect();
            want.extend(layer_norm64(&row, &rg, &rbe, 1e-12));
        }
        let bufs = [up(s, &x), up(s, &w), up(s, &bias), up(s, &res), up(s, &gamma), up(s, &beta)];
        Self { shape: [rows, inf, outf], elem, bufs, want }
    }

    /// Enqueue the block on `s` into `out` (`scratch` for the unsplit path).
    fn run(
        &self,
        s: &CudaStream,
        scratch: &CudaBuffer,
        out: &CudaBuffer,
    ) -> Result<(), BackendError> {
        let [x, w, b, r, g, be] = &self.bufs;
        let norm = LayerNormArgs { gamma: g.into(), beta: be.into(), eps: 1e-12 };
        let (x, w, b, r) = (x.into(), w.into(), Some(b.into()), Some(r.into()));
        let (sc, o) = (scratch.into(), out.into());
        ops::linear_add_layer_norm(
            s,
            x,
            w,
            b,
            r,
            norm,
            self.shape,
            sc,
            o,
            self.elem,
            MatMath::Exact,
        )
    }

    fn outputs(&self, s: &CudaStream) -> (CudaBuffer, CudaBuffer) {
        let n = self.shape[0] * self.shape[2] * self.elem.size();
        (s.alloc(n).unwrap(), s.alloc(n).unwrap())
    }

    fn check(&self, what: &str, s: &CudaStream, out: &CudaBuffer) -> Vec<f32> {
        let Storage { down, tol, .. } = storage(self.elem);
        let got = down(s, out, self.shape[0] * self.shape[2]);
        assert_close(&format!("{what} {:?} {:?}", self.shape, self.elem), &got, &self.want, tol);
        got
    }
}

/// Runs `block` on `s`; returns its output and how it ran.
fn run_block(s: &CudaStream, block: &Block) -> (Vec<f32>, Split) {
    let (scratch, out) = block.outputs(s);
    let before = (ops::split_k_launches(), ops::tf32x3_launches());
    block.run(s, &scratch, &out).unwrap();
    let split = match (ops::split_k_launches() - before.0, ops::tf32x3_launches() - before.1) {
        (0, 0) => Split::No,
        (1, 1) => Split::TensorCores,
        (1, 0) => Split::Blas,
        counts => panic!("one linear counted as {counts:?}"),
    };
    (block.check("linear_add_layer_norm", s, &out), split)
}

/// How a linear ran.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Split {
    No,
    /// Split, the products on tensor cores (kernels/tf32x3.cu).
    TensorCores,
    /// Split, the products by cuBLAS.
    Blas,
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn split_where_it_should_be_and_the_same_results_as_unsplit() {
    let backend = open();
    let unsplit = CudaOptions { kernel_cache_dir: None, split_k: false, ..Default::default() };
    let plain = CudaBackend::open_with(0, unsplit).unwrap();
    let (s, p) = (backend.new_stream(0).unwrap(), plain.new_stream(0).unwrap());
    // (shape, split): MiniLM's two blocks at batch 1, one row, 37 rows; N not a multiple of 64
    // (cuBLAS's products); too many rows; K slices under 32 wide; N not a multiple of 4.
    let cases = [
        ([128, 384, 384], Split::TensorCores),
        ([128, 1536, 384], Split::TensorCores),
        ([1, 384, 384], Split::TensorCores),
        ([37, 384, 384], Split::TensorCores),
        ([128, 384, 388], Split::Blas),
        ([129, 384, 384], Split::No),
        ([128, 200, 384], Split::No),
        ([64, 384, 30], Split::No),
    ];
    for (shape, split) in cases {
        let block = Block::new(&s, shape, Elem::F32);
        let (got, was_split) = run_block(&s, &block);
        assert_eq!(was_split, split, "{shape:?}");
        let (plain_got, plain_split) = run_block(&p, &Block::new(&p, shape, Elem::F32));
        assert_eq!(plain_split, Split::No, "split_k: false never splits");
        let diff = got.iter().zip(&plain_got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "{shape:?}: split vs unsplit differ by {diff}");
    }
    // f16 and bf16 are never split.
    for elem in [Elem::F16, Elem::Bf16] {
        let (_, split) = run_block(&s, &Block::new(&s, [128, 384, 384], elem));
        assert_eq!(split, Split::No, "{elem:?}");
    }
    // Linear + bias + GELU (MiniLM's intermediate projection) and linear + bias (its QKV
    // projection), split, vs the reference.
    for (act, outf) in [(Act::Gelu, 1536), (Act::Identity, 1152)] {
        let (rows, inf) = (128, 384);
        let (x, w, bias) = (rand(rows * inf, 31), rand(outf * inf, 32), rand(outf, 33));
        let want: Vec<f64> = matmul64(&x, false, &w, true, rows, outf, inf)
            .iter()
            .enumerate()
            .map(|(i, v)| v + bias[i % outf] as f64)
            .map(|v| if act == Act::Gelu { gelu64(v) } else { v })
            .collect();
        let (dx, dw, db) = (upload(&s, &x), upload(&s, &w), upload(&s, &bias));
        let out = s.alloc(rows * outf * 4).unwrap();
        let before = ops::split_k_launches();
        let (x, w, b, o) = ((&dx).into(), (&dw).into(), Some((&db).into()), (&out).into());
        ops::linear(&s, x, w, b, act, rows, inf, outf, o, Elem::F32, MatMath::Exact).unwrap();
        assert_eq!(ops::split_k_launches(), before + 1, "{act:?}");
        let got = download(&s, &out, rows * outf);
        assert_close(&format!("linear {act:?} split"), &got, &want, 1e-4);
    }
}

/// Largest error of `got` against `want`, relative to the sum of the magnitudes of the products
/// that made each element (the scale of an f32 GEMM's rounding).
fn gemm_error(got: &[f32], want: &[f64], magnitude: &[f64]) -> f64 {
    let errors = got.iter().zip(want).zip(magnitude).map(|((g, w), m)| (*g as f64 - w).abs() / m);
    errors.fold(0.0, f64::max)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn tensor_core_products_are_as_accurate_as_cublas_f32() {
    let backend = open();
    let unsplit = CudaOptions { kernel_cache_dir: None, split_k: false, ..Default::default() };
    let plain = CudaBackend::open_with(0, unsplit).unwrap();
    let (s, p) = (backend.new_stream(0).unwrap(), plain.new_stream(0).unwrap());
    // MiniLM's four projections at 128 and 37 rows (K split 4 to 8 ways).
    for [rows, inf, outf] in [[128, 384, 1152], [128, 384, 384], [128, 384, 1536], [37, 1536, 384]]
    {
        let (x, w) = (rand(rows * inf, 41), rand(outf * inf, 42));
        let want = matmul64(&x, false, &w, true, rows, outf, inf);
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<f32>>();
        let magnitude = matmul64(&abs(&x), false, &abs(&w), true, rows, outf, inf);
        let mut errors = Vec::new();
        for stream in [&s, &p] {
            let (dx, dw) = (upload(stream, &x), upload(stream, &w));
            let out = stream.alloc(rows * outf * 4).unwrap();
            let before = ops::tf32x3_launches();
            linear_f32(stream, &dx, &dw, None, [rows, inf, outf], &out).unwrap();
            let tensor_cores = ops::tf32x3_launches() > before;
            assert_eq!(tensor_cores, std::ptr::eq(stream, &s), "{rows}x{inf}x{outf}");
            errors.push(gemm_error(&download(stream, &out, rows * outf), &want, &magnitude));
        }
        let [tc, blas] = [errors[0], errors[1]];
        eprintln!("{rows}x{inf}x{outf}: 3xTF32 error {tc:.2e}, cuBLAS f32 {blas:.2e}");
        assert!(tc <= 2.0 * blas && tc < 2e-7, "{rows}x{inf}x{outf}: {tc:.2e} vs {blas:.2e}");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn under_load_linears_split_on_tensor_cores_up_to_eight_streams() {
    let backend = open();
    let s = backend.new_stream(0).unwrap();
    let block = Block::new(&s, [128, 384, 384], Elem::F32);
    let cublas_slices = Block::new(&s, [128, 384, 388], Elem::F32); // N not a multiple of 64
    for (load, tc, blas) in [
        (1, Split::TensorCores, Split::Blas),
        (2, Split::TensorCores, Split::No),
        (8, Split::TensorCores, Split::No),
        (16, Split::No, Split::No),
        (32, Split::No, Split::No),
    ] {
        s.set_gemm_load(load);
        assert_eq!(run_block(&s, &block).1, tc, "load {load}");
        assert_eq!(run_block(&s, &cublas_slices).1, blas, "load {load}");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn captures_before_and_after_the_partials_buffer_exists() {
    let backend = open();
    let s = backend.new_stream(0).unwrap();
    let block = Block::new(&s, [128, 1536, 384], Elem::F32);
    let (scratch, out) = block.outputs(&s);
    s.synchronize().unwrap();
    // First split-K use inside a capture: nothing may be allocated there, so it runs unsplit.
    let before = ops::split_k_launches();
    let (graph, ()) = s.capture_retrying(|| block.run(&s, &scratch, &out)).unwrap();
    assert_eq!(ops::split_k_launches(), before, "no partials buffer yet: not split");
    s.replay(&graph).unwrap();
    block.check("graph, unsplit", &s, &out);
    // An eager call allocates the buffer (split); a capture after it splits too.
    let (_, split) = run_block(&s, &block);
    assert_eq!(split, Split::TensorCores);
    let before = ops::split_k_launches();
    let (graph, ()) = s.capture_retrying(|| block.run(&s, &scratch, &out)).unwrap();
    assert_eq!(ops::split_k_launches(), before + 1);
    for _ in 0..3 {
        s.replay(&graph).unwrap();
        block.check("graph, split", &s, &out);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn sixteen_threads_each_with_its_own_partials_agree_bitwise() {
    let backend = open();
    let s0 = backend.new_stream(0).unwrap();
    let block = Block::new(&s0, [128, 384, 384], Elem::F32);
    let (alone, split) = run_block(&s0, &block);
    assert_eq!(split, Split::TensorCores);
    let threads = 16;
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (backend, block, start, alone) = (&backend, &block, &start, &alone);
            scope.spawn(move || {
                let s = backend.new_stream(t + 1).unwrap();
                let (scratch, out) = block.outputs(&s);
                start.wait();
                for _ in 0..50 {
                    block.run(&s, &scratch, &out).unwrap();
                }
                let got = block.check("thread", &s, &out);
                assert!(got.iter().zip(alone).all(|(a, b)| a.to_bits() == b.to_bits()), "{t}");
            });
        }
    });
}
