//! Where one MiniLM encoder layer spends its time, kernel by kernel, at one 128-token text and
//! at a batch of 32. Ignored by default; run with
//! `cargo test --release -p streampool-cpu kernels::perf_layer -- --ignored --nocapture`.

use std::time::Instant;

use super::*;

const HIDDEN: usize = 384;
const INTER: usize = 1536;
const HEADS: usize = 12;
const SEQ: usize = 128;

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + seed) % 23) as f32 * 0.01 - 0.1).collect()
}

/// Runs one layer `reps` times, adding each kernel's wall time to `t` (seconds).
fn layer(batch: usize, par: Parallelism, reps: usize, t: &mut [f64; 8]) {
    let rows = batch * SEQ;
    let x = data(rows * HIDDEN, 1);
    // Six layers' worth of distinct weights (42 MB), as in the model: they do not all fit L3.
    let weights: Vec<_> = (0..6)
        .map(|l| {
            let (wq, wo) = (data(HIDDEN * HIDDEN, 2 + l), data(HIDDEN * HIDDEN, 3 + l));
            let (wi, w2) = (data(INTER * HIDDEN, 4 + l), data(HIDDEN * INTER, 5 + l));
            let wkv = [data(HIDDEN * HIDDEN, 8 + l), data(HIDDEN * HIDDEN, 9 + l)];
            (wq, wkv, wo, wi, w2)
        })
        .collect();
    let (bh, bi) = (data(HIDDEN, 6), data(INTER, 7));
    let (g, b) = (vec![1.0; HIDDEN], vec![0.0; HIDDEN]);
    let mask = vec![1.0; batch * SEQ];
    let (mut q, mut k, mut v) = (x.clone(), x.clone(), x.clone());
    let (mut ctx, mut proj, mut h2) = (x.clone(), x.clone(), x.clone());
    let mut inter = vec![0.0; rows * INTER];
    let dims = AttentionDims { batch, seq: SEQ, heads: HEADS, head_dim: HIDDEN / HEADS };
    let mut scratch = vec![0.0; attention_scratch_len(dims, Parallelism::Threads(2))];
    for rep in 0..reps {
        let (wq, [wk, wv], wo, wi, w2) = &weights[rep % weights.len()];
        let mut clock = Instant::now();
        let mut lap = |i: usize| {
            t[i] += clock.elapsed().as_secs_f64();
            clock = Instant::now();
        };
        for (w, out) in [(wq, &mut q), (wk, &mut k), (wv, &mut v)] {
            linear(&x, w, Some(&bh), rows, HIDDEN, HIDDEN, out, par).unwrap();
        }
        lap(0);
        attention(&q, &k, &v, Some(&mask), dims, &mut ctx, &mut scratch, par).unwrap();
        lap(1);
        linear(&ctx, wo, None, rows, HIDDEN, HIDDEN, &mut proj, par).unwrap();
        lap(2);
        add_layer_norm(&proj, &x, Some(&bh), rows, HIDDEN, &g, &b, 1e-12, &mut h2).unwrap();
        lap(3);
        linear(&h2, wi, None, rows, HIDDEN, INTER, &mut inter, par).unwrap();
        lap(4);
        bias_gelu_inplace(&mut inter, &bi).unwrap();
        lap(5);
        linear(&inter, w2, None, rows, INTER, HIDDEN, &mut proj, par).unwrap();
        lap(6);
        add_layer_norm(&proj, &h2, Some(&bh), rows, HIDDEN, &g, &b, 1e-12, &mut q).unwrap();
        lap(7);
    }
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn minilm_layer_breakdown() {
    let names =
        ["qkv", "attention", "attn_out", "add_ln", "ffn_in", "bias_gelu", "ffn_out", "add_ln"];
    let h = HIDDEN as f64;
    let flops = [
        6.0 * h * h,
        4.0 * SEQ as f64 * h,
        2.0 * h * h,
        0.0,
        2.0 * h * INTER as f64,
        0.0,
        2.0 * h * INTER as f64,
        0.0,
    ];
    for batch in [1, 32] {
        for par in [Parallelism::Sequential, Parallelism::Threads(2)] {
            let reps = if batch == 1 { 48 } else { 6 };
            layer(batch, par, 1, &mut [0.0; 8]);
            let mut t = [0.0f64; 8];
            layer(batch, par, reps, &mut t);
            let per_text = |s: f64| s / (reps * batch) as f64;
            let total: f64 = t.iter().map(|&s| per_text(s)).sum();
            let tokens = SEQ as f64;
            let gf = flops.iter().sum::<f64>() * tokens / total / 1e9;
            println!(
                "layer, batch {batch}, {par:?}: {:.3} ms/text ({gf:.1} GFLOP/s; x6 layers = {:.1} texts/s)",
                total * 1e3,
                1.0 / (6.0 * total)
            );
            for ((name, &s), &f) in names.iter().zip(&t).zip(&flops) {
                let s = per_text(s);
                let rate = if f > 0.0 {
                    format!("{:.1} GFLOP/s", f * tokens / s / 1e9)
                } else {
                    String::new()
                };
                println!("  {name:<10} {:7.3} ms {:4.1}% {rate}", s * 1e3, 100.0 * s / total);
            }
        }
    }
}
