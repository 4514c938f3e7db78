//! Helpers shared by the GPU tests: random data, upload/download, naive f64 references and
//! tolerance checks.
#![allow(dead_code)] // each test binary uses a different subset

#[allow(unused_imports)] // each test binary uses a different subset
pub use streampool_core::testing::rand;
use streampool_core::Stream;
use streampool_cuda::{CudaBackend, CudaBuffer, CudaOptions, CudaStream};

pub fn open() -> CudaBackend {
    let options = CudaOptions { kernel_cache_dir: None, ..CudaOptions::default() };
    CudaBackend::open_with(0, options).expect("needs a CUDA GPU")
}

pub fn upload_bytes(stream: &CudaStream, bytes: &[u8]) -> CudaBuffer {
    let buf = stream.alloc(bytes.len().max(4)).unwrap();
    stream.write(&buf, 0, bytes).unwrap();
    buf
}

pub fn upload(stream: &CudaStream, v: &[f32]) -> CudaBuffer {
    upload_bytes(stream, &v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<_>>())
}

pub fn upload_u32(stream: &CudaStream, v: &[u32]) -> CudaBuffer {
    upload_bytes(stream, &v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<_>>())
}

pub fn upload_f16(stream: &CudaStream, v: &[f32]) -> CudaBuffer {
    let b: Vec<u8> =
        v.iter().flat_map(|&x| half::f16::from_f32(x).to_bits().to_ne_bytes()).collect();
    upload_bytes(stream, &b)
}

pub fn upload_bf16(stream: &CudaStream, v: &[f32]) -> CudaBuffer {
    let b: Vec<u8> =
        v.iter().flat_map(|&x| half::bf16::from_f32(x).to_bits().to_ne_bytes()).collect();
    upload_bytes(stream, &b)
}

pub fn download(stream: &CudaStream, buf: &CudaBuffer, n: usize) -> Vec<f32> {
    let mut b = vec![0u8; n * 4];
    stream.read(buf, 0, &mut b).unwrap();
    b.chunks_exact(4).map(|c| f32::from_ne_bytes(c.try_into().unwrap())).collect()
}

/// All of `buf` as u32 words (waits for `stream`).
pub fn download_u32(stream: &CudaStream, buf: &CudaBuffer) -> Vec<u32> {
    let mut b = vec![0u8; buf.len()];
    stream.read(buf, 0, &mut b).unwrap();
    b.chunks_exact(4).map(|c| u32::from_ne_bytes(c.try_into().unwrap())).collect()
}

pub fn download_f16(stream: &CudaStream, buf: &CudaBuffer, n: usize) -> Vec<f32> {
    let mut b = vec![0u8; n * 2];
    stream.read(buf, 0, &mut b).unwrap();
    b.chunks_exact(2)
        .map(|c| half::f16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32())
        .collect()
}

pub fn download_bf16(stream: &CudaStream, buf: &CudaBuffer, n: usize) -> Vec<f32> {
    let mut b = vec![0u8; n * 2];
    stream.read(buf, 0, &mut b).unwrap();
    b.chunks_exact(2)
        .map(|c| half::bf16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32())
        .collect()
}

/// Values as f16 / bf16 would round them (the reference sees what the device sees).
pub fn round_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}
pub fn round_bf16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect()
}

/// `|got - want| <= tol * (1 + |want|)` everywhere; returns the largest scaled error.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs() / (1.0 + w.abs());
        assert!(err <= tol, "{what}[{i}]: got {g}, want {w} (scaled error {err:e} > {tol:e})");
        worst = worst.max(err);
    }
    eprintln!("{what}: max scaled error {worst:.2e} (tolerance {tol:.0e})");
    worst
}

pub fn gelu64(x: f64) -> f64 {
    0.5 * x * (1.0 + erf64(x / std::f64::consts::SQRT_2))
}

/// erf by its Taylor series (|z| < 5) or ±1.
pub fn erf64(z: f64) -> f64 {
    if z.abs() > 5.0 {
        return z.signum();
    }
    let (mut term, mut s) = (z, z);
    for n in 1..300 {
        term *= -z * z / n as f64;
        s += term / (2 * n + 1) as f64;
    }
    s * 2.0 / std::f64::consts::PI.sqrt()
}

/// Row-major `[m, k] . [k, n]` in f64 with optional transposes of the stored operands.
#[allow(clippy::too_many_arguments)]
pub fn matmul64(
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f64> {
    let at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] } as f64;
    let bt = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] } as f64;
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
        }
    }
    c
}

pub fn layer_norm64(row: &[f64], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f64> {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    row.iter()
        .enumerate()
        .map(|(i, v)| (v - mean) / (var + eps).sqrt() * gamma[i] as f64 + beta[i] as f64)
        .collect()
}

/// Reference attention over `[batch, seq, heads * d]` rows of `ld` (q, k, v) with a 0/1 mask.
#[allow(clippy::too_many_arguments)]
pub fn attention64(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    ld: usize,
    mask: Option<&[f32]>,
    batch: usize,
    seq: usize,
    heads: usize,
    d: usize,
) -> Vec<f64> {
    let hid = heads * d;
    let mut out = vec![0.0f64; batch * seq * hid];
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..seq {
                let at = |t: &[f32], s: usize, c: usize| t[(b * seq + s) * ld + h * d + c] as f64;
                let sc: Vec<f64> = (0..seq)
                    .map(|j| {
                        let dot: f64 = (0..d).map(|c| at(q, i, c) * at(k, j, c)).sum();
                        let m = mask.map_or(1.0, |m| m[b * seq + j] as f64);
                        dot / (d as f64).sqrt() + (1.0 - m) * f32::MIN as f64
                    })
                    .collect();
                let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = sc.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..d {
                    out[(b * seq + i) * hid + h * d + c] =
                        (0..seq).map(|j| e[j] / z * at(v, j, c)).sum();
                }
            }
        }
    }
    out
}

/// How a test moves data of one element type to and from the device, and its tolerance.
pub struct Storage {
    pub up: fn(&CudaStream, &[f32]) -> CudaBuffer,
    pub round: fn(&[f32]) -> Vec<f32>,
    pub down: fn(&CudaStream, &CudaBuffer, usize) -> Vec<f32>,
    pub tol: f64,
}

pub fn storage(elem: streampool_cuda::ops::Elem) -> Storage {
    use streampool_cuda::ops::Elem;
    match elem {
        Elem::F32 => Storage { up: upload, round: |v| v.to_vec(), down: download, tol: 1e-4 },
        Elem::F16 => Storage { up: upload_f16, round: round_f16, down: download_f16, tol: 2e-3 },
        Elem::Bf16 => {
            Storage { up: upload_bf16, round: round_bf16, down: download_bf16, tol: 1.6e-2 }
        }
    }
}

/// `out = x . w^T + bias`, exact f32 (`x` `[rows, inf]`, `w` `[outf, inf]`), through `ops::linear`.
#[allow(dead_code)] // not every test file uses it
pub fn linear_f32(
    s: &CudaStream,
    x: &CudaBuffer,
    w: &CudaBuffer,
    bias: Option<&CudaBuffer>,
    [rows, inf, outf]: [usize; 3],
    out: &CudaBuffer,
) -> Result<(), streampool_core::BackendError> {
    use streampool_core::MatMath;
    use streampool_cuda::ops::{self, Act, Elem};
    let (xs, ws, b, o) = (x.into(), w.into(), bias.map(Into::into), out.into());
    ops::linear(s, xs, ws, b, Act::Identity, rows, inf, outf, o, Elem::F32, MatMath::Exact)
}
