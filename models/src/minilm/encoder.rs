//! MiniLM's encoder: post-norm BERT layers (self-attention, then a GELU feed-forward block),
//! each sub-block closed by a residual add and layer norm.

use streampool_core::MatMath;
use streampool_tensor::{Activation, Ops, Tensor};

use super::weights::{LayerWeights, LinearWeights, NormWeights};
use super::workspace::Activations;
use crate::ModelError;

/// Runs one layer: reads and writes `a.hidden`, using the other activations as scratch.
/// `position_bias`: MPNet's relative position bias per distance (none for the other
/// architectures).
pub(crate) fn layer<B: Ops>(
    stream: &B::Stream,
    w: &LayerWeights<B>,
    heads: usize,
    position_bias: Option<&Tensor<B>>,
    math: MatMath,
    a: &Activations<B>,
) -> Result<(), ModelError> {
    let id = Activation::Identity;
    // A projection closing a sub-block: `out = LayerNorm(x . W^T + b + residual)`, the bias
    // added inside the layer norm (`a.projected` is scratch for the projection).
    let close = |x: &Tensor<B>, p: &LinearWeights<B>, n: &NormWeights<B>, res, out| {
        let (bias, norm) = (Some(&p.bias), n.as_op());
        B::linear_add_layer_norm(stream, x, &p.weight, math, bias, res, norm, &a.projected, out)
    };
    // Query, key and value in one projection, read in place by the attention.
    B::linear_math(stream, &a.hidden, &w.qkv.weight, Some(&w.qkv.bias), id, math, &a.qkv)?;
    B::attention_qkv(stream, &a.qkv, Some(&a.mask), position_bias, heads, &a.context)?;
    close(&a.context, &w.attn_out, &w.attn_norm, Some(&a.hidden), &a.attn_hidden)?;
    let (wi, bi) = (&w.intermediate.weight, Some(&w.intermediate.bias));
    B::linear_math(stream, &a.attn_hidden, wi, bi, Activation::Gelu, math, &a.intermediate)?;
    close(&a.intermediate, &w.output, &w.out_norm, Some(&a.attn_hidden), &a.hidden)?;
    Ok(())
}
