//! MiniLM's encoder: post-norm BERT layers (self-attention, then a GELU feed-forward block),
//! each sub-block closed by a residual add and layer norm.

use streampool_tensor::{Activation, MatMath, Ops};

use super::weights::LayerWeights;
use super::workspace::Activations;
use crate::ModelError;

/// Runs one layer: reads and writes `a.hidden`, using the other activations as scratch.
pub(crate) fn layer<B: Ops>(
    stream: &B::Stream,
    w: &LayerWeights<B>,
    heads: usize,
    math: MatMath,
    a: &Activations<B>,
) -> Result<(), ModelError> {
    let id = Activation::Identity;
    // Query, key and value in one projection, read in place by the attention.
    B::linear_math(stream, &a.hidden, &w.qkv.weight, Some(&w.qkv.bias), id, math, &a.qkv)?;
    B::attention_qkv(stream, &a.qkv, Some(&a.mask), heads, &a.context)?;
    // Output projection without its bias: the bias is fused into the residual layer norm.
    B::linear_math(stream, &a.context, &w.attn_out.weight, None, id, math, &a.projected)?;
    let (res, bias) = (Some(&a.hidden), Some(&w.attn_out.bias));
    B::add_layer_norm(stream, &a.projected, res, bias, w.attn_norm.as_op(), &a.attn_hidden)?;
    let (wi, bi) = (&w.intermediate.weight, Some(&w.intermediate.bias));
    B::linear_math(stream, &a.attn_hidden, wi, bi, Activation::Gelu, math, &a.intermediate)?;
    B::linear_math(stream, &a.intermediate, &w.output.weight, None, id, math, &a.projected)?;
    let (res, bias) = (Some(&a.attn_hidden), Some(&w.output.bias));
    B::add_layer_norm(stream, &a.projected, res, bias, w.out_norm.as_op(), &a.hidden)?;
    Ok(())
}
