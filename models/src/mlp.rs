//! [`Mlp`]: Linear → GELU → Linear → … → Linear, loaded from safetensors
//! (`layers.{i}.weight` `[out, in]`, `layers.{i}.bias` `[out]`, `i = 0, 1, ..`).

use std::path::Path;

use streampool_core::{Device, Stream};
use streampool_tensor::{Activation, DType, Ops, Tensor};

use crate::stack::LayerStack;
use crate::workspace::GrowBuffer;
use crate::ModelError;

/// Ping-pong activation buffers of one slot.
struct MlpWorkspace<B: Ops> {
    input: GrowBuffer<B>,
    act: [GrowBuffer<B>; 2],
}

impl<B: Ops> Default for MlpWorkspace<B> {
    fn default() -> Self {
        Self { input: GrowBuffer::default(), act: [GrowBuffer::default(), GrowBuffer::default()] }
    }
}

/// A multi-layer perceptron with exact GELU between layers (none after the last).
pub struct Mlp<B: Ops> {
    stack: LayerStack<B, MlpWorkspace<B>>,
}

impl<B: Ops> Mlp<B> {
    /// Loads `layers.{i}.weight`/`.bias` from a safetensors file and uploads them.
    pub fn load(device: &Device<B>, path: &Path) -> Result<Self, ModelError> {
        Ok(Self { stack: LayerStack::load(device, path, "layers", 2)? })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.stack.inputs()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.stack.outputs()
    }

    /// Every parameter tensor.
    pub fn parameters(&self) -> Vec<&Tensor<B>> {
        self.stack.parameters()
    }

    /// `input` `[batch, in_features]` (row-major) → `[batch, out_features]`, on `stream`.
    pub fn forward(
        &self,
        stream: &B::Stream,
        input: &[f32],
        batch: usize,
    ) -> Result<Vec<f32>, ModelError> {
        if batch == 0 {
            return Err(ModelError::EmptyBatch);
        }
        let inp = self.in_features();
        if input.len() != batch * inp {
            return Err(ModelError::InputLength {
                expected: batch * inp,
                found: input.len(),
                shape: format!("[{batch}, {inp}]"),
            });
        }
        let LayerStack { device, layers, .. } = &self.stack;
        let mut ws = self.stack.workspace(stream)?;
        let MlpWorkspace { input: arena, act } = &mut *ws;
        let mut x = arena.view(device, &[batch, inp], DType::F32)?;
        x.write_host(stream, input)?;
        let last = layers.len() - 1;
        for (i, (w, b)) in layers.iter().enumerate() {
            let y = act[i % 2].view(device, &[batch, w.shape()[0]], DType::F32)?;
            let f = if i == last { Activation::Identity } else { Activation::Gelu };
            B::linear(stream, &x, w, Some(b), f, &y)?;
            x = y;
        }
        let out = x.to_host(stream)?;
        stream.synchronize()?;
        Ok(out)
    }
}
