//! Writing safetensors files (tests, generated MLP/Conv1D models).

use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::TensorView;

use super::Dtype;
use crate::loading::LoadError;

/// Borrowed element data of one tensor to save.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum TensorData<'a> {
    /// Stored as F32.
    F32(&'a [f32]),
    /// Stored as F16.
    F16(&'a [f16]),
    /// Stored as BF16.
    BF16(&'a [bf16]),
}

impl TensorData<'_> {
    fn len(&self) -> usize {
        match self {
            TensorData::F32(d) => d.len(),
            TensorData::F16(d) => d.len(),
            TensorData::BF16(d) => d.len(),
        }
    }

    fn dtype(&self) -> Dtype {
        match self {
            TensorData::F32(_) => Dtype::F32,
            TensorData::F16(_) => Dtype::F16,
            TensorData::BF16(_) => Dtype::BF16,
        }
    }

    fn to_le_bytes(self) -> Vec<u8> {
        match self {
            TensorData::F32(d) => d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            TensorData::F16(d) => d.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect(),
            TensorData::BF16(d) => d.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect(),
        }
    }
}

/// Writes `f32` tensors `(name, shape, data)` to a safetensors file at `path`.
///
/// The file is written under a temporary name and renamed into place, so readers never see a
/// half-written file. Errors: [`LoadError::InvalidTensorToSave`] when a data length does not
/// match its shape or a name repeats, [`LoadError::Io`] when writing fails.
pub fn save_f32(path: &Path, tensors: &[(&str, &[usize], &[f32])]) -> Result<(), LoadError> {
    let tensors: Vec<_> =
        tensors.iter().map(|&(name, shape, data)| (name, shape, TensorData::F32(data))).collect();
    save(path, &tensors)
}

/// Writes tensors of any [`TensorData`] dtype to a safetensors file at `path`; see [`save_f32`].
pub fn save(path: &Path, tensors: &[(&str, &[usize], TensorData<'_>)]) -> Result<(), LoadError> {
    let invalid = |name: &str, reason: String| LoadError::InvalidTensorToSave {
        path: path.to_path_buf(),
        name: name.to_owned(),
        reason,
    };
    let mut encoded = Vec::with_capacity(tensors.len());
    for (i, &(name, shape, data)) in tensors.iter().enumerate() {
        if tensors[..i].iter().any(|&(other, _, _)| other == name) {
            return Err(invalid(name, "the name appears twice".to_owned()));
        }
        let elements = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if elements != Some(data.len()) {
            return Err(invalid(
                name,
                format!("shape {shape:?} does not match {} data elements", data.len()),
            ));
        }
        encoded.push((name, shape, data.dtype(), data.to_le_bytes()));
    }
    let mut views = Vec::with_capacity(encoded.len());
    for (name, shape, dtype, bytes) in &encoded {
        let view = TensorView::new(dtype.to_safetensors(), shape.to_vec(), bytes)
            .map_err(|e| invalid(name, e.to_string()))?;
        views.push((*name, view));
    }
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| invalid("", format!("serialization failed: {e}")))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".partial");
    let tmp = Path::new(&tmp_name);
    std::fs::write(tmp, bytes).map_err(|e| LoadError::io(tmp, e))?;
    std::fs::rename(tmp, path).map_err(|e| LoadError::io(path, e))
}
