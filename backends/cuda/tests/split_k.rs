//! Split-K linears (`ops::linear` with an activation, `ops::linear_add_layer_norm`): split only
//! where they should be (exact f32, at most 128 rows, a stream planned for the whole GPU), the
//! same results as the unsplit path and an f64 reference, per-stream partials (16 threads agree
//! bitwise), and graph captures before and after the stream's partials buffer exists. Needs a
//! GPU: ignored by default, run with `-- --include-ignored`.
#![cfg(feature = "cuda")]

mod common;

use std::sync::Barrier;

use common::*;
use streampool_core::{Backend, BackendError, Stream};
use streampool_cuda::ops::{self, Act, Elem, LayerNormArgs, Precision};
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
            Precision::F32,
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

/// Runs `block` on `s`; returns its output and whether it ran split.
fn run_block(s: &CudaStream, block: &Block) -> (Vec<f32>, bool) {
    let (scratch, out) = block.outputs(s);
    let before = ops::split_k_launches();
    block.run(s, &scratch, &out).unwrap();
    let split = ops::split_k_launches() > before;
    (block.check("linear_add_layer_norm", s, &out), split)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn split_where_it_should_be_and_the_same_results_as_unsplit() {
    let backend = open();
    let unsplit = CudaOptions { kernel_cache_dir: None, split_k: false, ..Default::default() };
    let plain = CudaBackend::open_with(0, unsplit).unwrap();
    let (s, p) = (backend.new_stream(0).unwrap(), plain.new_stream(0).unwrap());
    // (shape, split): MiniLM's two blocks at batch 1, one row; too many rows; K slices under 32
    // wide; N not a multiple of 4.
    let cases = [
        ([128, 384, 384], true),
        ([128, 1536, 384], true),
        ([1, 384, 384], true),
        ([129, 384, 384], false),
        ([128, 200, 384], false),
        ([64, 384, 30], false),
    ];
    for (shape, split) in cases {
        let block = Block::new(&s, shape, Elem::F32);
        let (got, was_split) = run_block(&s, &block);
        assert_eq!(was_split, split, "{shape:?}");
        let (plain_got, plain_split) = run_block(&p, &Block::new(&p, shape, Elem::F32));
        assert!(!plain_split, "split_k: false never splits");
        let diff = got.iter().zip(&plain_got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "{shape:?}: split vs unsplit differ by {diff}");
    }
    // f16 and bf16 are never split.
    for elem in [Elem::F16, Elem::Bf16] {
        let (_, split) = run_block(&s, &Block::new(&s, [128, 384, 384], elem));
        assert!(!split, "{elem:?}");
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
        ops::linear(&s, x, w, b, act, rows, inf, outf, o, Elem::F32, Precision::F32).unwrap();
        assert_eq!(ops::split_k_launches(), before + 1, "{act:?}");
        let got = download(&s, &out, rows * outf);
        assert_close(&format!("linear {act:?} split"), &got, &want, 1e-4);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn under_load_linears_are_not_split() {
    let backend = open();
    let s = backend.new_stream(0).unwrap();
    let block = Block::new(&s, [128, 384, 384], Elem::F32);
    s.set_gemm_load(8);
    let (_, split) = run_block(&s, &block);
    assert!(!split, "GEMMs planned for a share of the GPU are not split");
    s.set_gemm_load(1);
    let (_, split) = run_block(&s, &block);
    assert!(split);
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
    assert!(split);
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
    assert!(split);
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
