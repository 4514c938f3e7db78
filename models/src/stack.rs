//! [`LayerStack`]: what the MLP and the Conv1D net share: `(weight, bias)` layers read from one
//! safetensors file (`{prefix}.{i}.weight` / `.bias`, `i = 0, 1, ..`), uploaded once and read by
//! every thread, and a workspace per pool slot (behind that slot's lock).

use std::path::Path;
use std::sync::{Arc, MutexGuard};

use streampool_core::{Device, Stream};
use streampool_tensor::{Ops, Tensor};

use crate::loading::Weights;
use crate::params::Uploader;
use crate::workspace::SlotWorkspaces;
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
        return Err(crate::loading::LoadError::TensorMissing {
            path: path.to_path_buf(),
            name: format!("{prefix}.0.weight"),
        }
        .into());
    }
    up.finish()?;
    Ok(layers)
}

/// Layers shared by every thread plus one workspace `W` per pool slot.
pub(crate) struct LayerStack<B: Ops, W> {
    pub(crate) device: Device<B>,
    pub(crate) layers: Arc<Vec<Layer<B>>>,
    pub(crate) workspaces: SlotWorkspaces<W>,
}

impl<B: Ops, W: Default> LayerStack<B, W> {
    /// Loads the `{prefix}.{i}.*` layers (weights of rank `rank`) and uploads them.
    pub(crate) fn load(
        device: &Device<B>,
        path: &Path,
        prefix: &str,
        rank: usize,
    ) -> Result<Self, ModelError> {
        let layers = load_layers(device, path, prefix, rank)?;
        Ok(Self {
            device: device.clone(),
            layers: Arc::new(layers),
            workspaces: SlotWorkspaces::new(device.capacity()),
        })
    }

    /// The first layer's input width (dimension 1 of its weight).
    pub(crate) fn inputs(&self) -> usize {
        self.layers[0].0.shape()[1]
    }

    /// The last layer's output width (dimension 0 of its weight).
    pub(crate) fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].0.shape()[0]
    }

    /// Every parameter tensor.
    pub(crate) fn parameters(&self) -> Vec<&Tensor<B>> {
        self.layers.iter().flat_map(|(w, b)| [w, b]).collect()
    }

    /// The workspace of `stream`'s slot, locked.
    pub(crate) fn workspace(&self, stream: &B::Stream) -> Result<MutexGuard<'_, W>, ModelError> {
        self.workspaces.lock(stream.slot())
    }
}
