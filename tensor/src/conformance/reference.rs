//! What each op computes, in f64 and plain loops: the suite's references. Inputs are the f32
//! values the device holds (already rounded to the case's type), row-major.

use streampool_core::Conv1dParams;

use crate::{Activation, Layout};

/// `act(x . w^T + bias)` for `x` `[rows, inputs]`, `w` `[outputs, inputs]`.
pub fn linear(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    [rows, inputs, outputs]: [usize; 3],
    act: Activation,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * outputs);
    for r in 0..rows {
        let xr = &x[r * inputs..][..inputs];
        for o in 0..outputs {
            let wr = &w[o * inputs..][..inputs];
            let dot: f64 = xr.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum();
            let v = dot + bias.map_or(0.0, |b| b[o] as f64);
            out.push(activate(act, v));
        }
    }
    out
}

/// `act(v)`.
pub fn activate(act: Activation, v: f64) -> f64 {
    match act {
        Activation::Identity => v,
        Activation::Gelu => gelu(v),
        Activation::Tanh => v.tanh(),
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())
        }
    }
}

/// Exact GELU, `x Φ(x)`.
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// The error function: its Taylor series below 3, the asymptotic series of `erfc` above (both
/// within 1e-12 there).
pub fn erf(z: f64) -> f64 {
    let a = z.abs();
    let e = if a < 3.0 {
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = e^{-a^2} / (a sqrt(pi)) (1 - 1/(2a^2) + 3/(2a^2)^2 - 15/(2a^2)^3 + ...)
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        for k in 1..8 {
            term *= -((2 * k - 1) as f64) / (2.0 * a * a);
            sum += term;
        }
        1.0 - (-a * a).exp() / (a * std::f64::consts::PI.sqrt()) * sum
    };
    e.copysign(z)
}

/// `(row - mean) / sqrt(var + eps) * gamma + beta` (biased variance, as PyTorch).
pub fn layer_norm(row: &[f64], gamma: &[f32], beta: &[f32], eps: f32) -> Vec<f64> {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let scale = 1.0 / (var + eps as f64).sqrt();
    row.iter()
        .zip(gamma.iter().zip(beta))
        .map(|(v, (&g, &b))| (v - mean) * scale * g as f64 + b as f64)
        .collect()
}

/// `LayerNorm(x + bias + residual)` row by row; `x` holds rows of `gamma.len()`.
pub fn add_layer_norm(
    x: &[f64],
    residual: Option<&[f32]>,
    bias: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> Vec<f64> {
    let dim = gamma.len();
    let mut out = Vec::with_capacity(x.len());
    for (r, row) in x.chunks_exact(dim).enumerate() {
        let sum: Vec<f64> = (0..dim)
            .map(|i| {
                row[i]
                    + bias.map_or(0.0, |b| b[i] as f64)
                    + residual.map_or(0.0, |res| res[r * dim + i] as f64)
            })
            .collect();
        out.extend(layer_norm(&sum, gamma, beta, eps));
    }
    out
}

/// Where attention finds its operands: rows of `ld` values, a sequence's `seq` rows after one
/// another, the query, key and value of a head at columns `q`, `k`, `v` plus `head * head_dim`.
#[derive(Clone, Copy, Debug)]
pub struct QkvLayout {
    /// Values per row.
    pub ld: usize,
    /// First column of the queries.
    pub q: usize,
    /// First column of the keys.
    pub k: usize,
    /// First column of the values.
    pub v: usize,
}

/// `softmax(Q K^T / sqrt(d)) V` per sequence and head over the keys whose mask is 1 (all when
/// `mask` is `None`); out `[batch, seq, heads * head_dim]`.
pub fn attention(
    data: [&[f32]; 3],
    at: QkvLayout,
    mask: Option<&[f32]>,
    bias: Option<&[f32]>,
    [batch, seq, heads, head_dim]: [usize; 4],
) -> Vec<f64> {
    // `bias`: `[heads, 2 * span + 1]`, entry `j - i + span` for query `i`, key `j`.
    let width = bias.map_or(0, |b| b.len() / heads.max(1));
    let hidden = heads * head_dim;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut out = vec![0.0; batch * seq * hidden];
    for b in 0..batch {
        let keys: Vec<usize> =
            (0..seq).filter(|&j| mask.is_none_or(|m| m[b * seq + j] != 0.0)).collect();
        for h in 0..heads {
            let val = |t: usize, s: usize, col: usize, c: usize| {
                data[t][(b * seq + s) * at.ld + col + h * head_dim + c] as f64
            };
            for i in 0..seq {
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&j| {
                        let rel = bias.map_or(0.0, |b| b[h * width + width / 2 + j - i] as f64);
                        (0..head_dim).map(|c| val(0, i, at.q, c) * val(1, j, at.k, c)).sum::<f64>()
                            * scale
                            + rel
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                for c in 0..head_dim {
                    let o: f64 =
                        keys.iter().zip(&exps).map(|(&j, e)| e / total * val(2, j, at.v, c)).sum();
                    out[(b * seq + i) * hidden + h * head_dim + c] = o;
                }
            }
        }
    }
    out
}

/// `table[ids[t]]` for every id, as f64.
pub fn embedding(ids: &[u32], table: &[f32], dim: usize) -> Vec<f64> {
    ids.iter().flat_map(|&id| table[id as usize * dim..][..dim].iter().map(|&v| v as f64)).collect()
}

/// BERT's embedding tables and the layer norm after their sum, as host data.
#[derive(Clone, Copy, Debug)]
pub struct BertTables<'a> {
    /// `[vocab, dim]`.
    pub word: &'a [f32],
    /// `[positions, dim]`.
    pub position: &'a [f32],
    /// `[types, dim]`.
    pub token_type: &'a [f32],
    /// `[dim]`.
    pub gamma: &'a [f32],
    /// `[dim]`.
    pub beta: &'a [f32],
    /// The layer norm's epsilon.
    pub eps: f32,
}

/// `LayerNorm(word[ids] + position[s] + token_type[type_ids])` for `ids` `[batch, seq]`.
pub fn bert_embeddings(
    ids: &[u32],
    type_ids: Option<&[u32]>,
    t: BertTables<'_>,
    seq: usize,
) -> Vec<f64> {
    let dim = t.gamma.len();
    let mut out = Vec::with_capacity(ids.len() * dim);
    for (i, &id) in ids.iter().enumerate() {
        let ty = type_ids.map_or(0, |ts| ts[i]) as usize;
        let s = i % seq;
        let sum: Vec<f64> = (0..dim)
            .map(|c| {
                t.word[id as usize * dim + c] as f64
                    + t.position[s * dim + c] as f64
                    + t.token_type[ty * dim + c] as f64
            })
            .collect();
        out.extend(layer_norm(&sum, t.gamma, t.beta, t.eps));
    }
    out
}

/// PyTorch's `nn.Conv1d` then `act`: `x` `[batch, cin, length]`, `w` `[cout, cin / groups,
/// kernel]`, out `[batch, cout, out_len]`.
pub fn conv1d(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    [batch, cin, length, cout, kernel]: [usize; 5],
    p: Conv1dParams,
    act: Activation,
) -> Vec<f64> {
    let out_len = p.out_len(length, kernel).expect("a conv1d case with an output");
    let (cin_g, cout_g) = (cin / p.groups, cout / p.groups);
    let mut out = Vec::with_capacity(batch * cout * out_len);
    for b in 0..batch {
        for o in 0..cout {
            let g = o / cout_g;
            for l in 0..out_len {
                let mut v = bias.map_or(0.0, |bs| bs[o] as f64);
                for ci in 0..cin_g {
                    let c = g * cin_g + ci;
                    for k in 0..kernel {
                        // Position in the unpadded input; outside it is padding (zero).
                        let pos = (l * p.stride + k * p.dilation).checked_sub(p.padding);
                        if let Some(pos) = pos.filter(|&q| q < length) {
                            v += x[(b * cin + c) * length + pos] as f64
                                * w[(o * cin_g + ci) * kernel + k] as f64;
                        }
                    }
                }
                out.push(activate(act, v));
            }
        }
    }
    out
}

/// Mean over the sequence of `hidden` `[batch, seq, dim]` at the positions whose mask is 1.
pub fn mean_pool(hidden: &[f32], mask: Option<&[f32]>, [batch, seq, dim]: [usize; 3]) -> Vec<f64> {
    let mut out = vec![0.0; batch * dim];
    for b in 0..batch {
        let kept: Vec<usize> =
            (0..seq).filter(|&s| mask.is_none_or(|m| m[b * seq + s] != 0.0)).collect();
        for c in 0..dim {
            let sum: f64 = kept.iter().map(|&s| hidden[(b * seq + s) * dim + c] as f64).sum();
            out[b * dim + c] = sum / kept.len() as f64;
        }
    }
    out
}

/// Max over the sequence, masked positions counted as -1e9.
pub fn max_pool(hidden: &[f32], mask: Option<&[f32]>, [batch, seq, dim]: [usize; 3]) -> Vec<f64> {
    let mut out = vec![f64::MIN; batch * dim];
    for b in 0..batch {
        for s in 0..seq {
            let padding = mask.is_some_and(|m| m[b * seq + s] == 0.0);
            for c in 0..dim {
                let v = if padding { -1e9 } else { hidden[(b * seq + s) * dim + c] as f64 };
                out[b * dim + c] = out[b * dim + c].max(v);
            }
        }
    }
    out
}

/// The mean weighted by position (from 1) over the unmasked positions.
pub fn weighted_mean_pool(
    hidden: &[f32],
    mask: Option<&[f32]>,
    [batch, seq, dim]: [usize; 3],
) -> Vec<f64> {
    let mut out = vec![0.0; batch * dim];
    for b in 0..batch {
        let w = |s: usize| mask.map_or(1.0, |m| m[b * seq + s] as f64) * (s + 1) as f64;
        let total: f64 = (0..seq).map(w).sum();
        for c in 0..dim {
            let sum: f64 = (0..seq).map(|s| w(s) * hidden[(b * seq + s) * dim + c] as f64).sum();
            out[b * dim + c] = sum / total;
        }
    }
    out
}

/// The row at position `sum(mask) - 1` of each sequence (the last without a mask).
pub fn last_token_pool(
    hidden: &[f32],
    mask: Option<&[f32]>,
    [batch, seq, dim]: [usize; 3],
) -> Vec<f64> {
    let mut out = vec![0.0; batch * dim];
    for b in 0..batch {
        let n = mask.map_or(seq, |m| m[b * seq..][..seq].iter().filter(|&&v| v != 0.0).count());
        let last = n.max(1) - 1;
        for c in 0..dim {
            out[b * dim + c] = hidden[(b * seq + last) * dim + c] as f64;
        }
    }
    out
}

/// Each row of `dim` divided by `max(norm, 1e-12)`.
pub fn l2_normalize(x: &[f32], dim: usize) -> Vec<f64> {
    x.chunks_exact(dim)
        .flat_map(|row| {
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
            row.iter().map(move |&v| v as f64 / norm)
        })
        .collect()
}

/// The elements of the strided view `layout` of `data` (offset and strides in elements), in
/// row-major order of the view.
pub fn gather<T: Copy>(data: &[T], layout: &Layout) -> Vec<T> {
    let shape = layout.shape();
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(layout.numel());
    for _ in 0..layout.numel() {
        let at =
            layout.offset() + index.iter().zip(layout.strides()).map(|(i, s)| i * s).sum::<usize>();
        out.push(data[at]);
        // Next index, last dimension fastest.
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}
