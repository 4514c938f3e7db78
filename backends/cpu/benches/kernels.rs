//! Speed of the CPU compute kernels on MiniLM shapes (hidden 384, intermediate 1536, 12 heads of
//! 32, 128-token sequences), each on one thread (`seq`) and on all cores (`threadsN`):
//!
//! - `gemm`: the GEMM-backed kernels: `linear` on the encoder's projections at 128 and 1024 rows,
//!   the attention of one sequence, and a square 2048 `matmul` as the f32 peak to compare with.
//!   Throughput is in FLOPs (criterion's "elem/s" reads as FLOP/s); `gelu` in values.
//! - `layer_b1`, `layer_b32`: one encoder layer kernel by kernel, at one text and at a batch of
//!   32: `qkv` (three projections), `attention`, `attn_out`, `add_ln1`, `ffn_in`, `bias_gelu`,
//!   `ffn_out`, `add_ln2`, and `layer` (all eight in order). Each time is per call for the whole
//!   batch; throughput is in FLOPs for the GEMM-backed kernels and the layer, in values for the
//!   element-wise ones. Six layers' worth of distinct weights (42 MB, as in the model) are used in
//!   turn, so that they do not all stay in cache.
//!
//! `cargo bench -p streampool-cpu --bench kernels`

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use streampool_cpu::kernels::{
    add_layer_norm, attention, attention_scratch_len, bias_gelu_inplace, gelu_erf, linear, matmul,
    AttentionDims, GemmDims, MatLayout, MatView, MatViewMut, Parallelism,
};

const HIDDEN: usize = 384;
const INTER: usize = 1536;
const HEADS: usize = 12;
const SEQ: usize = 128;
/// Layers of MiniLM whose weights the layer benchmarks cycle through.
const LAYERS: usize = 6;

/// One thread, and every core of the machine.
fn parallelisms() -> [(String, Parallelism); 2] {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    [
        ("seq".into(), Parallelism::Sequential),
        (format!("threads{cores}"), Parallelism::Threads(cores)),
    ]
}

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + seed) % 23) as f32 * 0.01 - 0.1).collect()
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    configure(&mut group);
    let shapes = [
        (128, HIDDEN, INTER),
        (128, INTER, HIDDEN),
        (128, HIDDEN, HIDDEN),
        (1024, HIDDEN, INTER),
        (1024, INTER, HIDDEN),
        (1024, HIDDEN, HIDDEN),
    ];
    for (rows, inf, outf) in shapes {
        let x = data(rows * inf, 1);
        let w = data(outf * inf, 2);
        let b = vec![0.5f32; outf];
        let mut out = vec![0.0f32; rows * outf];
        group.throughput(Throughput::Elements(2 * (rows * inf * outf) as u64));
        for (name, par) in parallelisms() {
            let id = BenchmarkId::new(format!("linear_{rows}x{inf}x{outf}"), name);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    linear(black_box(&x), &w, Some(&b), rows, inf, outf, &mut out, par).unwrap()
                })
            });
        }
        assert!(out.iter().all(|v| v.is_finite()));
    }

    // Attention of one 128-token sequence; FLOPs of its two GEMMs.
    let dims = AttentionDims { batch: 1, seq: SEQ, heads: HEADS, head_dim: HIDDEN / HEADS };
    let q = data(SEQ * HIDDEN, 3);
    let mut out = vec![0.0; q.len()];
    group.throughput(Throughput::Elements(4 * (SEQ * SEQ * HIDDEN) as u64));
    for (name, par) in parallelisms() {
        let mut scratch = vec![0.0; attention_scratch_len(dims, par)];
        group.bench_function(BenchmarkId::new("attention_b1_s128_h12x32", name), |bench| {
            bench.iter(|| {
                attention(black_box(&q), &q, &q, None, None, dims, &mut out, &mut scratch, par)
                    .unwrap()
            })
        });
    }

    let x: Vec<f32> = (0..SEQ * INTER).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
    let mut y = vec![0.0; x.len()];
    group.throughput(Throughput::Elements(x.len() as u64));
    group.bench_function("gelu_128x1536", |bench| {
        bench.iter(|| gelu_erf(black_box(&x), &mut y).unwrap())
    });

    // The f32 matmul peak: a square 2048 GEMM.
    let n = 2048;
    let a = data(n * n, 4);
    let mut cm = vec![0.0f32; n * n];
    let l = MatLayout::row_major(n, n);
    let d = GemmDims { batch: 1, m: n, n, k: n };
    group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    for (name, par) in parallelisms() {
        group.bench_function(BenchmarkId::new("matmul_2048", name), |bench| {
            bench.iter(|| {
                let (av, bv) = (MatView { data: &a, layout: l }, MatView { data: &a, layout: l });
                let cv = MatViewMut { data: &mut cm, layout: l };
                matmul(d, 1.0, av, bv, 0.0, cv, par).unwrap()
            })
        });
    }
    group.finish();
}

/// The weights of one encoder layer.
struct LayerWeights {
    wq: Vec<f32>,
    wk: Vec<f32>,
    wv: Vec<f32>,
    wo: Vec<f32>,
    wi: Vec<f32>,
    w2: Vec<f32>,
}

/// A layer norm's parameters (BERT's epsilon).
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    /// `out = LayerNorm(x + residual + bias)` over rows of [`HIDDEN`].
    fn add(&self, x: &[f32], residual: &[f32], bias: &[f32], out: &mut [f32]) {
        let rows = x.len() / HIDDEN;
        add_layer_norm(x, residual, Some(bias), rows, HIDDEN, &self.gamma, &self.beta, 1e-12, out)
            .unwrap();
    }
}

/// Inputs, weights and activations of one encoder layer at `batch` texts of [`SEQ`] tokens.
struct Layer {
    batch: usize,
    weights: Vec<LayerWeights>,
    /// Which of `weights` the next call uses.
    next: usize,
    x: Vec<f32>,
    bh: Vec<f32>,
    bi: Vec<f32>,
    norm: Norm,
    mask: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    proj: Vec<f32>,
    h2: Vec<f32>,
    inter: Vec<f32>,
    scratch: Vec<f32>,
}

/// The steps of one layer, in order.
#[derive(Clone, Copy)]
enum Step {
    Qkv,
    Attention,
    AttnOut,
    AddLn1,
    FfnIn,
    BiasGelu,
    FfnOut,
    AddLn2,
}

impl Step {
    const ALL: [Step; 8] = [
        Step::Qkv,
        Step::Attention,
        Step::AttnOut,
        Step::AddLn1,
        Step::FfnIn,
        Step::BiasGelu,
        Step::FfnOut,
        Step::AddLn2,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Qkv => "qkv",
            Step::Attention => "attention",
            Step::AttnOut => "attn_out",
            Step::AddLn1 => "add_ln1",
            Step::FfnIn => "ffn_in",
            Step::BiasGelu => "bias_gelu",
            Step::FfnOut => "ffn_out",
            Step::AddLn2 => "add_ln2",
        }
    }

    /// FLOPs per token of the GEMM-backed steps; values written per token for the others.
    fn work_per_token(self) -> usize {
        match self {
            Step::Qkv => 6 * HIDDEN * HIDDEN,
            Step::Attention => 4 * SEQ * HIDDEN,
            Step::AttnOut => 2 * HIDDEN * HIDDEN,
            Step::FfnIn | Step::FfnOut => 2 * HIDDEN * INTER,
            Step::AddLn1 | Step::AddLn2 => HIDDEN,
            Step::BiasGelu => INTER,
        }
    }

    /// FLOPs per token of the GEMM-backed steps.
    fn flops_per_token(self) -> usize {
        match self {
            Step::AddLn1 | Step::AddLn2 | Step::BiasGelu => 0,
            _ => self.work_per_token(),
        }
    }
}

impl Layer {
    fn new(batch: usize) -> Self {
        let rows = batch * SEQ;
        let x = data(rows * HIDDEN, 1);
        let weights = (0..LAYERS)
            .map(|l| LayerWeights {
                wq: data(HIDDEN * HIDDEN, 2 + l),
                wk: data(HIDDEN * HIDDEN, 8 + l),
                wv: data(HIDDEN * HIDDEN, 9 + l),
                wo: data(HIDDEN * HIDDEN, 3 + l),
                wi: data(INTER * HIDDEN, 4 + l),
                w2: data(HIDDEN * INTER, 5 + l),
            })
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let scratch_len = attention_scratch_len(Self::dims(batch), Parallelism::Threads(cores));
        Layer {
            batch,
            weights,
            next: 0,
            bh: data(HIDDEN, 6),
            bi: data(INTER, 7),
            norm: Norm { gamma: vec![1.0; HIDDEN], beta: vec![0.0; HIDDEN] },
            mask: vec![1.0; rows],
            q: x.clone(),
            k: x.clone(),
            v: x.clone(),
            ctx: x.clone(),
            proj: x.clone(),
            h2: x.clone(),
            inter: vec![0.0; rows * INTER],
            scratch: vec![0.0; scratch_len],
            x,
        }
    }

    fn dims(batch: usize) -> AttentionDims {
        AttentionDims { batch, seq: SEQ, heads: HEADS, head_dim: HIDDEN / HEADS }
    }

    /// Runs `step` with the next layer's weights.
    fn run(&mut self, step: Step, par: Parallelism) {
        let rows = self.batch * SEQ;
        let w = &self.weights[self.next];
        self.next = (self.next + 1) % self.weights.len();
        let (x, bh) = (&self.x, &self.bh);
        match step {
            Step::Qkv => {
                for (w, out) in [(&w.wq, &mut self.q), (&w.wk, &mut self.k), (&w.wv, &mut self.v)] {
                    linear(x, w, Some(bh), rows, HIDDEN, HIDDEN, out, par).unwrap();
                }
            }
            Step::Attention => attention(
                &self.q,
                &self.k,
                &self.v,
                Some(&self.mask),
                None,
                Self::dims(self.batch),
                &mut self.ctx,
                &mut self.scratch,
                par,
            )
            .unwrap(),
            Step::AttnOut => {
                linear(&self.ctx, &w.wo, None, rows, HIDDEN, HIDDEN, &mut self.proj, par).unwrap()
            }
            Step::AddLn1 => self.norm.add(&self.proj, x, bh, &mut self.h2),
            Step::FfnIn => {
                linear(&self.h2, &w.wi, None, rows, HIDDEN, INTER, &mut self.inter, par).unwrap()
            }
            Step::BiasGelu => bias_gelu_inplace(&mut self.inter, &self.bi).unwrap(),
            Step::FfnOut => {
                linear(&self.inter, &w.w2, None, rows, INTER, HIDDEN, &mut self.proj, par).unwrap()
            }
            // Into `q`, as the next layer's input would be: `x` stays the same for every call.
            Step::AddLn2 => self.norm.add(&self.proj, &self.h2, bh, &mut self.q),
        }
    }

    /// The whole layer: every step in order, on one layer's weights.
    fn run_all(&mut self, par: Parallelism) {
        let layer = self.next;
        for step in Step::ALL {
            self.next = layer;
            self.run(step, par);
        }
    }
}

fn layer(c: &mut Criterion) {
    for batch in [1, 32] {
        let mut group = c.benchmark_group(format!("layer_b{batch}"));
        configure(&mut group);
        let mut layer = Layer::new(batch);
        let tokens = (batch * SEQ) as u64;
        for (name, par) in parallelisms() {
            for step in Step::ALL {
                group.throughput(Throughput::Elements(step.work_per_token() as u64 * tokens));
                group.bench_function(BenchmarkId::new(step.name(), &name), |bench| {
                    bench.iter(|| layer.run(step, par))
                });
            }
            let flops: usize = Step::ALL.iter().map(|s| s.flops_per_token()).sum();
            group.throughput(Throughput::Elements(flops as u64 * tokens));
            group.bench_function(BenchmarkId::new("layer", &name), |bench| {
                bench.iter(|| layer.run_all(par))
            });
        }
        assert!(layer.q.iter().chain(&layer.inter).all(|v| v.is_finite()));
        group.finish();
    }
}

criterion_group!(benches, gemm, layer);
criterion_main!(benches);
