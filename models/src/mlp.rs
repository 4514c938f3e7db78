//! [`Mlp`]: Linear → GELU → Linear → … → Linear, loaded from safetensors
//! (`layers.{i}.weight` `[out, in]`, `layers.{i}.bias` `[out]`, `i = 0, 1, ..`).

use std::path::Path;
use std::sync::Arc;

use streampool_core::{Device, Stream};
use streampool_tensor::{Activation, DType, Ops, Tensor};

use crate::loading::Weights;
use crate::params::Uploader;
use crate::workspace::{Arena, SlotWorkspaces};
use crate::ModelError;

/// A layer's `(weight, bias)`.
pub(crate) type Layer<B> = (Tensor<B>, Tensor<B>);

/// Layers `(weight, bias)` read from a file with the `layers.{i}.*` naming: the count comes
/// from the file, the shapes must chain.
pub(crate) fn load_layers<B: Ops>(
    device: &Device<B>,
    path: &Path,
    prefix: &str,
    rank: usize,
) -> Result<Vec<Layer<B>>, ModelError> {
    let file = Weights::open(path)?;
    let lease = device.acquire()?;
    let up = Uploader { device, stream: lease.stream(), weights: &file };
    let mut layers: Vec<Layer<B>> = Vec::new();
    while file.contains(&format!("{prefix}.{}.weight", layers.len())) {
        let i = layers.len();
        let name = format!("{prefix}.{i}.weight");
        let mut shape = file.shape(&name)?.to_vec();
        if shape.len() != rank {
            return Err(ModelError::Unsupported {
                what: format!("{} tensor `{name}`", path.display()),
                reason: format!("shape {shape:?} has rank {}, expected {rank}", shape.len()),
            });
        }
        if let Some((prev, _)) = layers.last() {
            // The input width must be the previous layer's output width.
            shape[1] = prev.shape()[0];
        }
        let w = up.tensor(&name, &shape)?;
        let b = up.tensor(&format!("{prefix}.{i}.bias"), &shape[..1])?;
        layers.push((w, b));
    }
    if layers.is_empty() {
        return Err(crate::loading::ModelError::TensorMissing {
            path: path.to_path_buf(),
            name: format!("{prefix}.0.weight"),
        }
        .into());
    }
    up.finish()?;
    Ok(layers)
}

/// Ping-pong activation buffers of one slot.
struct MlpWorkspace<B: Ops> {
    input: Arena<B>,
    act: [Arena<B>; 2],
}

impl<B: Ops> Default for MlpWorkspace<B> {
    fn default() -> Self {
        Self { input: Arena::default(), act: [Arena::default(), Arena::default()] }
    }
}

/// A multi-layer perceptron with exact GELU between layers (none after the last).
pub struct Mlp<B: Ops> {
    device: Device<B>,
    layers: Arc<Vec<Layer<B>>>,
    workspaces: SlotWorkspaces<MlpWorkspace<B>>,
}

impl<B: Ops> Mlp<B> {
    /// Loads `layers.{i}.weight`/`.bias` from a safetensors file and uploads them.
    pub fn load(device: &Device<B>, path: &Path) -> Result<Self, ModelError> {
        let layers = load_layers(device, path, "layers", 2)?;
        Ok(Self {
            device: device.clone(),
            layers: Arc::new(layers),
            workspaces: SlotWorkspaces::new(device.capacity()),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.layers[0].0.shape()[1]
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.layers[self.layers.len() - 1].0.shape()[0]
    }

    /// Every parameter tensor.
    pub fn parameters(&self) -> Vec<&Tensor<B>> {
        self.layers.iter().flat_map(|(w, b)| [w, b]).collect()
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
        let mut ws = self.workspaces.lock(stream.slot())?;
        let MlpWorkspace { input: arena, act } = &mut *ws;
        let mut x = arena.view(&self.device, &[batch, inp], DType::F32)?;
        x.write_host(stream, input)?;
        let last = self.layers.len() - 1;
        for (i, (w, b)) in self.layers.iter().enumerate() {
            let y = act[i % 2].view(&self.device, &[batch, w.shape()[0]], DType::F32)?;
            let f = if i == last { Activation::Identity } else { Activation::Gelu };
            B::linear(stream, &x, w, Some(b), f, &y)?;
            x = y;
        }
        let out = x.to_host(stream)?;
        stream.synchronize()?;
        Ok(out)
    }
}
