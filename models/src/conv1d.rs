//! [`Conv1dNet`]: conv1d → GELU → conv1d → … → mean over length, loaded from safetensors
//! (`convs.{i}.weight` `[out, in, kernel]`, `convs.{i}.bias` `[out]`). Stride 1, "same" zero
//! padding `(kernel - 1) / 2`.

use std::path::Path;
use streampool_core::Conv1dParams;

use streampool_core::{Device, Stream};
use streampool_tensor::{Activation, DType, Ops, Tensor};

use crate::stack::LayerStack;
use crate::workspace::GrowBuffer;
use crate::ModelError;

struct ConvWorkspace<B: Ops> {
    input: GrowBuffer<B>,
    act: [GrowBuffer<B>; 2],
    pooled: GrowBuffer<B>,
}

impl<B: Ops> Default for ConvWorkspace<B> {
    fn default() -> Self {
        Self {
            input: GrowBuffer::default(),
            act: [GrowBuffer::default(), GrowBuffer::default()],
            pooled: GrowBuffer::default(),
        }
    }
}

/// A 1-D convolutional encoder: convolutions with GELU between them, then the mean over length.
pub struct Conv1dNet<B: Ops> {
    stack: LayerStack<B, ConvWorkspace<B>>,
}

impl<B: Ops> Conv1dNet<B> {
    /// Loads `convs.{i}.weight`/`.bias` from a safetensors file and uploads them.
    pub fn load(device: &Device<B>, path: &Path) -> Result<Self, ModelError> {
        Ok(Self { stack: LayerStack::load(device, path, "convs", 3)? })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.stack.inputs()
    }

    /// Output channels (the length of each result).
    pub fn out_channels(&self) -> usize {
        self.stack.outputs()
    }

    /// The padding each layer uses.
    pub fn params(kernel: usize) -> Conv1dParams {
        Conv1dParams { padding: kernel.saturating_sub(1) / 2, ..Conv1dParams::default() }
    }

    /// Every parameter tensor.
    pub fn parameters(&self) -> Vec<&Tensor<B>> {
        self.stack.parameters()
    }

    /// `input` `[batch, in_channels, length]` → `[batch, out_channels]`, on `stream`.
    pub fn forward(
        &self,
        stream: &B::Stream,
        input: &[f32],
        batch: usize,
        length: usize,
    ) -> Result<Vec<f32>, ModelError> {
        if batch == 0 || length == 0 {
            return Err(ModelError::EmptyBatch);
        }
        let cin = self.in_channels();
        if input.len() != batch * cin * length {
            return Err(ModelError::InputLength {
                expected: batch * cin * length,
                found: input.len(),
                shape: format!("[{batch}, {cin}, {length}]"),
            });
        }
        let LayerStack { device, layers, .. } = &self.stack;
        let mut ws = self.stack.workspace(stream)?;
        let ConvWorkspace { input: arena, act, pooled } = &mut *ws;
        let mut x = arena.view(device, &[batch, cin, length], DType::F32)?;
        x.write_host(stream, input)?;
        let last = layers.len() - 1;
        for (i, (w, b)) in layers.iter().enumerate() {
            let p = Self::params(w.shape()[2]);
            let len = x.shape()[2];
            let out_len = p.out_len(len, w.shape()[2]).ok_or_else(|| ModelError::InvalidInput {
                index: 0,
                reason: format!("length {len} is too short for layer {i}'s kernel"),
            })?;
            let y = act[i % 2].view(device, &[batch, w.shape()[0], out_len], DType::F32)?;
            let f = if i == last { Activation::Identity } else { Activation::Gelu };
            B::conv1d(stream, &x, w, Some(b), p, f, &y)?;
            x = y;
        }
        // Mean over length: [batch * channels, length, 1] pooled to [batch * channels, 1].
        let (c, l) = (x.shape()[1], x.shape()[2]);
        let out = pooled.view(device, &[batch * c, 1], DType::F32)?;
        B::mean_pool(stream, &x.reshape(&[batch * c, l, 1])?, None, &out)?;
        let host = out.to_host(stream)?;
        stream.synchronize()?;
        Ok(host)
    }
}
