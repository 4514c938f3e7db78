//! Reading and writing safetensors weight files.

mod dtype;
mod read;
mod save;

pub use dtype::Dtype;
pub use read::{name_variants, RawTensor, TensorInfo, Weights};
pub use save::{save, save_f32, TensorData};
