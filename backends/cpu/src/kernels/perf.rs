//! Throughput of the GEMM-backed kernels on MiniLM shapes. Ignored by default; run with
//! `cargo test --release -p streampool-cpu kernels::perf -- --ignored --nocapture`.

use std::time::Instant;

use super::*;

/// Best GFLOP/s over a few timed rounds of about 0.2 s each.
fn gflops(flops: f64, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = 0.0f64;
    for _ in 0..5 {
        let mut iters = 1u32;
        loop {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            let secs = t.elapsed().as_secs_f64();
            if secs > 0.2 {
                best = best.max(flops * iters as f64 / secs / 1e9);
                break;
            }
            iters *= 2;
        }
    }
    best
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn linear_gflops_minilm_shapes() {
    let shapes = [
        (128, 384, 1536),
        (128, 1536, 384),
        (128, 384, 384),
        (1024, 384, 1536),
        (1024, 1536, 384),
        (1024, 384, 384),
    ];
    for (rows, inf, outf) in shapes {
        let x: Vec<f32> = (0..rows * inf).map(|i| (i % 13) as f32 * 0.01).collect();
        let w: Vec<f32> = (0..outf * inf).map(|i| (i % 7) as f32 * 0.01).collect();
        let b = vec![0.5f32; outf];
        let mut out = vec![0.0f32; rows * outf];
        let flops = 2.0 * (rows * inf * outf) as f64;
        let mut line = format!("linear [{rows},{inf}]x[{outf},{inf}]^T:");
        for par in [Parallelism::Sequential, Parallelism::Threads(2)] {
            let g = gflops(flops, || {
                linear(&x, &w, Some(&b), rows, inf, outf, &mut out, par).unwrap();
            });
            line += &format!(" {par:?} {g:.1} GFLOP/s");
        }
        println!("{line}");
        assert!(out.iter().all(|v| v.is_finite()));
    }
    // Attention of one 128-token MiniLM sequence: 12 heads of 32.
    let dims = AttentionDims { batch: 1, seq: 128, heads: 12, head_dim: 32 };
    let n = 128 * 384;
    let q: Vec<f32> = (0..n).map(|i| (i % 11) as f32 * 0.01).collect();
    let mut out = vec![0.0; n];
    let mut scratch = vec![0.0; attention_scratch_len(dims, Parallelism::Threads(2))];
    let flops = 2.0 * 2.0 * 12.0 * 128.0 * 128.0 * 32.0;
    for par in [Parallelism::Sequential, Parallelism::Threads(2)] {
        let g = gflops(flops, || {
            attention(&q, &q, &q, None, dims, &mut out, &mut scratch, par).unwrap();
        });
        println!("attention b1 s128 h12x32: {par:?} {g:.1} GFLOP/s (GEMM flops)");
    }
    let x: Vec<f32> = (0..128 * 1536).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
    let mut y = vec![0.0; x.len()];
    let t = Instant::now();
    for _ in 0..100 {
        gelu_erf(&x, &mut y).unwrap();
    }
    println!("gelu [128,1536]: {:.1} us", t.elapsed().as_secs_f64() * 1e4);
}

/// The f32 matmul peak to compare the model with: a square 2048 GEMM, one thread and all.
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn matmul_peak_2048() {
    let n = 2048;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 13) as f32 * 0.01).collect();
    let mut c = vec![0.0f32; n * n];
    let l = MatLayout::row_major(n, n);
    let d = GemmDims { batch: 1, m: n, n, k: n };
    for par in [Parallelism::Sequential, Parallelism::Threads(2)] {
        let g = gflops(2.0 * (n * n * n) as f64, || {
            let (av, bv) = (MatView { data: &a, layout: l }, MatView { data: &a, layout: l });
            matmul(d, 1.0, av, bv, 0.0, MatViewMut { data: &mut c, layout: l }, par).unwrap();
        });
        println!("matmul 2048^3 f32: {par:?} {g:.1} GFLOP/s");
    }
}
