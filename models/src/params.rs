//! Uploading weights from a safetensors file to device tensors, once per model.

use streampool_core::{Device, Stream};
use streampool_tensor::{Ops, Tensor};

use crate::loading::Weights;
use crate::ModelError;

/// Reads named tensors from `weights` and uploads them on `stream`.
pub(crate) struct Uploader<'a, B: Ops> {
    pub(crate) device: &'a Device<B>,
    pub(crate) stream: &'a B::Stream,
    pub(crate) weights: &'a Weights,
}

impl<B: Ops> Uploader<'_, B> {
    /// Tensor `name`, checked to have `shape`, as an f32 device tensor.
    pub(crate) fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor<B>, ModelError> {
        let data = self.weights.get_f32(name, shape)?;
        Ok(Tensor::from_host(self.device, self.stream, &data, shape)?)
    }

    /// Waits for the uploads.
    pub(crate) fn finish(&self) -> Result<(), ModelError> {
        Ok(self.stream.synchronize()?)
    }
}
