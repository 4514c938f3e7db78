//! Gemma-3 text encoders (EmbeddingGemma): each layer is an RMS-normed, rotary, grouped-query
//! self-attention (bidirectional; within a sliding window on the sliding layers) and a gated GELU
//! feed-forward, each block's output RMS-normed again before its residual add; a final RMS norm
//! ends the stack. Computed as transformers' `Gemma3TextModel` does, op by op.

use streampool_core::MatMath;
use streampool_tensor::{Activation, DType, OpError, Ops, Tensor};

use super::workspace::{carve, Activations};
use crate::loading::{GemmaConfig, ModelConfig};
use crate::params::Uploader;
use crate::ModelError;

/// Beyond this the window bias is `-1e30`: the key gets no weight (finite, so that a masked key
/// beyond the window stays finite too).
const BEYOND: f32 = -1e30;

/// One layer's parameters (norm gains stored as `1 + w`, as Gemma applies them).
pub(crate) struct GemmaLayer<B: Ops> {
    input_norm: Tensor<B>,
    q: Tensor<B>,
    k: Tensor<B>,
    v: Tensor<B>,
    q_norm: Tensor<B>,
    k_norm: Tensor<B>,
    o: Tensor<B>,
    post_attn_norm: Tensor<B>,
    pre_ff_norm: Tensor<B>,
    gate: Tensor<B>,
    up: Tensor<B>,
    down: Tensor<B>,
    post_ff_norm: Tensor<B>,
    sliding: bool,
}

/// Every parameter of the encoder, and the tables derived from the configuration.
pub(crate) struct GemmaWeights<B: Ops> {
    /// The token embeddings times `sqrt(hidden_size)` (the scale transformers applies).
    embed: Tensor<B>,
    layers: Vec<GemmaLayer<B>>,
    norm: Tensor<B>,
    /// Rotary angles of the sliding and the full layers, f32 `[max_seq_length, head_dim]`.
    rope_sliding: Tensor<B>,
    rope_full: Tensor<B>,
    /// The sliding window as a distance bias (f32 `[heads, 2 * span + 1]`), or `None` when it
    /// covers every input the model takes.
    window: Option<Tensor<B>>,
    eps: f32,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f32,
}

impl<B: Ops> GemmaWeights<B> {
    /// Reads and uploads every parameter in `dt`, checking each shape.
    pub(crate) fn load(
        up: &Uploader<'_, B>,
        config: &ModelConfig,
        g: &GemmaConfig,
        dt: DType,
    ) -> Result<Self, ModelError> {
        let c = &config.bert;
        let (h, inter) = (c.hidden_size, c.intermediate_size);
        let (heads, kv_heads, hd) = (c.num_attention_heads, g.num_key_value_heads, g.head_dim);
        // Gemma's RMS norm multiplies by `1 + w`, in f32.
        let gain = |name: &str, dim: usize| -> Result<Tensor<B>, ModelError> {
            let w = up.weights.get_f32(name, &[dim])?;
            up.upload(&w.iter().map(|w| 1.0 + w).collect::<Vec<_>>(), &[dim], dt)
        };
        let scale = (h as f32).sqrt();
        let embed = up.weights.get_f32("embed_tokens.weight", &[c.vocab_size, h])?;
        let embed: Vec<f32> = embed.iter().map(|w| w * scale).collect();
        let layers = (0..c.num_hidden_layers)
            .map(|l| {
                let p = format!("layers.{l}");
                let lin = |name: &str, out: usize, inp: usize| {
                    up.tensor_as(&format!("{p}.{name}.weight"), &[out, inp], dt)
                };
                Ok(GemmaLayer {
                    input_norm: gain(&format!("{p}.input_layernorm.weight"), h)?,
                    q: lin("self_attn.q_proj", heads * hd, h)?,
                    k: lin("self_attn.k_proj", kv_heads * hd, h)?,
                    v: lin("self_attn.v_proj", kv_heads * hd, h)?,
                    q_norm: gain(&format!("{p}.self_attn.q_norm.weight"), hd)?,
                    k_norm: gain(&format!("{p}.self_attn.k_norm.weight"), hd)?,
                    o: lin("self_attn.o_proj", h, heads * hd)?,
                    post_attn_norm: gain(&format!("{p}.post_attention_layernorm.weight"), h)?,
                    pre_ff_norm: gain(&format!("{p}.pre_feedforward_layernorm.weight"), h)?,
                    gate: lin("mlp.gate_proj", inter, h)?,
                    up: lin("mlp.up_proj", inter, h)?,
                    down: lin("mlp.down_proj", h, inter)?,
                    post_ff_norm: gain(&format!("{p}.post_feedforward_layernorm.weight"), h)?,
                    sliding: g.sliding[l],
                })
            })
            .collect::<Result<_, ModelError>>()?;
        let positions = config.max_seq_length;
        let rope = |theta: f64| {
            up.upload(&rotary_table(theta, hd, positions), &[positions, hd], DType::F32)
        };
        let span = positions.saturating_sub(1);
        let window = (g.sliding.iter().any(|&s| s) && g.sliding_window < positions)
            .then(|| {
                let row: Vec<f32> = (0..2 * span + 1)
                    .map(|d| if d.abs_diff(span) < g.sliding_window { 0.0 } else { BEYOND })
                    .collect();
                up.upload(&row.repeat(heads), &[heads, 2 * span + 1], DType::F32)
            })
            .transpose()?;
        Ok(Self {
            embed: up.upload(&embed, &[c.vocab_size, h], dt)?,
            layers,
            norm: gain("norm.weight", h)?,
            rope_sliding: rope(g.rope_theta_sliding)?,
            rope_full: rope(g.rope_theta_full)?,
            window,
            eps: c.layer_norm_eps as f32,
            heads,
            kv_heads,
            head_dim: hd,
            scale: (g.query_pre_attn_scalar as f32).powf(-0.5),
        })
    }

    /// Every parameter and table.
    pub(crate) fn tensors(&self) -> Vec<&Tensor<B>> {
        let mut all = vec![&self.embed, &self.norm, &self.rope_sliding, &self.rope_full];
        all.extend(&self.window);
        for l in &self.layers {
            all.extend([&l.input_norm, &l.q, &l.k, &l.v, &l.q_norm, &l.k_norm, &l.o]);
            all.extend([&l.post_attn_norm, &l.pre_ff_norm, &l.gate, &l.up, &l.down]);
            all.push(&l.post_ff_norm);
        }
        all
    }

    /// Widths of the query (`heads * head_dim`) and key / value (`kv_heads * head_dim`) rows.
    pub(crate) fn widths(&self) -> (usize, usize) {
        (self.heads * self.head_dim, self.kv_heads * self.head_dim)
    }

    /// The forward pass into `a.attn_hidden` (the final norm's output, which the pooling reads):
    /// `a.hidden` the running state, the rest scratch laid out so that no op writes the buffer
    /// it reads: `a.qkv` holds q, k, v; `a.context` the normed q and k, then the attention's
    /// output, then the gated product; `a.intermediate` the gate and the up projection.
    pub(crate) fn forward(
        &self,
        stream: &B::Stream,
        math: MatMath,
        a: &Activations<B>,
    ) -> Result<(), ModelError> {
        let [rows, seq, _] = a.hidden.shape()[..] else {
            return Err(shape("hidden states are not [batch, seq, hidden]"));
        };
        let inter = self.layers.first().map_or(0, |l| l.gate.shape()[0]);
        let (qd, kvd) = self.widths();
        let tokens = rows * seq;
        let part =
            |t: &Tensor<B>, at: usize, width: usize| carve(t, at * tokens, &[rows, seq, width]);
        let q = part(&a.qkv, 0, qd)?;
        let k = part(&a.qkv, qd, kvd)?;
        let v = part(&a.qkv, qd + kvd, kvd)?;
        let qn = part(&a.context, 0, qd)?;
        let kn = part(&a.context, qd, kvd)?;
        let context = part(&a.context, 0, qd)?;
        let act = part(&a.context, 0, inter)?;
        let gate = part(&a.intermediate, 0, inter)?;
        let upv = part(&a.intermediate, inter, inter)?;
        let per_head = |t: &Tensor<B>, n: usize| t.reshape(&[tokens * n, self.head_dim]);
        let (q_rows, qn_rows) = (per_head(&q, self.heads)?, per_head(&qn, self.heads)?);
        let (k_rows, kn_rows) = (per_head(&k, self.kv_heads)?, per_head(&kn, self.kv_heads)?);
        let id = Activation::Identity;
        let eps = self.eps;
        let lin = |x: &Tensor<B>, w: &Tensor<B>, act, out: &Tensor<B>| {
            B::linear_math(stream, x, w, None, act, math, out)
        };
        let norm = |x: &Tensor<B>, residual: Option<&Tensor<B>>, w: &Tensor<B>, out: &Tensor<B>| {
            B::rms_norm(stream, x, residual, w, eps, out)
        };
        let (heads, kv_heads, scale) = (self.heads, self.kv_heads, self.scale);

        B::embedding(stream, &a.ids, &self.embed, &a.hidden)?;
        for l in &self.layers {
            norm(&a.hidden, None, &l.input_norm, &a.projected)?;
            lin(&a.projected, &l.q, id, &q)?;
            lin(&a.projected, &l.k, id, &k)?;
            lin(&a.projected, &l.v, id, &v)?;
            norm(&q_rows, None, &l.q_norm, &qn_rows)?;
            norm(&k_rows, None, &l.k_norm, &kn_rows)?;
            let (rope, window) = match l.sliding {
                true => (&self.rope_sliding, self.window.as_ref()),
                false => (&self.rope_full, None),
            };
            B::rotary(stream, &qn, rope, heads, &q)?;
            B::rotary(stream, &kn, rope, kv_heads, &k)?;
            let mask = Some(&a.mask);
            B::grouped_attention(
                stream, &q, &k, &v, mask, window, heads, kv_heads, scale, &context,
            )?;
            lin(&context, &l.o, id, &a.projected)?;
            norm(&a.projected, Some(&a.hidden), &l.post_attn_norm, &a.attn_hidden)?;
            norm(&a.attn_hidden, None, &l.pre_ff_norm, &a.projected)?;
            lin(&a.projected, &l.gate, Activation::GeluTanh, &gate)?;
            lin(&a.projected, &l.up, id, &upv)?;
            B::mul(stream, &gate, &upv, &act)?;
            lin(&act, &l.down, id, &a.projected)?;
            norm(&a.projected, Some(&a.attn_hidden), &l.post_ff_norm, &a.hidden)?;
        }
        norm(&a.hidden, None, &self.norm, &a.attn_hidden)?;
        Ok(())
    }
}

/// The rotary table of base `theta`: row `p` holds `cos(p * f_i)` then `sin(p * f_i)` for
/// `f_i = theta^(-2i / head_dim)`, the angle rounded to f32 as transformers computes it.
fn rotary_table(theta: f64, head_dim: usize, positions: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            (1.0 / theta.powf(exponent as f64)) as f32
        })
        .collect();
    let mut table = Vec::with_capacity(positions * head_dim);
    for p in 0..positions {
        let angles: Vec<f64> = inv_freq.iter().map(|&f| (p as f32 * f) as f64).collect();
        table.extend(angles.iter().map(|a| a.cos() as f32));
        table.extend(angles.iter().map(|a| a.sin() as f32));
    }
    table
}

fn shape(reason: &str) -> ModelError {
    ModelError::Op(OpError::Shape { op: "gemma forward", reason: reason.into() })
}
