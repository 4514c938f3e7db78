//! Uploading weights from a safetensors file to device tensors, once per model.

use streampool_core::{Device, Stream};
use streampool_tensor::{DType, Ops, Tensor};

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

    /// Tensor `name`, checked to have `shape`, uploaded in `dtype` (converted on the host).
    pub(crate) fn tensor_as(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor<B>, ModelError> {
        let data = self.weights.get_f32(name, shape)?;
        self.upload(&data, shape, dtype)
    }

    /// `data` (f32, row-major) as a `dtype` device tensor of `shape`: f32 as is, f16 / bf16
    /// rounded to nearest even on the host.
    pub(crate) fn upload(
        &self,
        data: &[f32],
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor<B>, ModelError> {
        let bytes: Vec<u8> = match dtype {
            DType::F32 => return Ok(Tensor::from_host(self.device, self.stream, data, shape)?),
            DType::F16 => data.iter().flat_map(|&v| half::f16::from_f32(v).to_ne_bytes()).collect(),
            DType::BF16 => {
                data.iter().flat_map(|&v| half::bf16::from_f32(v).to_ne_bytes()).collect()
            }
            DType::U32 => {
                return Err(ModelError::Unsupported {
                    what: "weights".into(),
                    reason: "u32 is not a float storage type".into(),
                })
            }
        };
        Ok(Tensor::from_host_bytes(self.device, self.stream, dtype, &bytes, shape)?)
    }

    /// Waits for the uploads.
    pub(crate) fn finish(&self) -> Result<(), ModelError> {
        Ok(self.stream.synchronize()?)
    }
}
