//! [`Precision`]: the numeric mode a model is loaded in.

use streampool_core::MatMath;
use streampool_tensor::{DType, Ops};

use crate::ModelError;

/// How a model stores its weights and activations and multiplies its matrices, chosen at load.
///
/// Arithmetic inside the kernels (layer norms, softmax, pooling) and the GEMMs' accumulation
/// are f32 in every mode; results reach the host as f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// f32 storage, full f32 products (no TF32): the reference mode, every backend.
    #[default]
    F32,
    /// f32 storage, GEMM products in TF32 (tensor cores).
    Tf32,
    /// IEEE half storage for weights and activations.
    F16,
    /// bfloat16 storage for weights and activations.
    Bf16,
}

impl Precision {
    /// Every mode, f32 first.
    pub const ALL: [Precision; 4] =
        [Precision::F32, Precision::Tf32, Precision::F16, Precision::Bf16];

    /// Storage type of the weights and float activations.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 | Precision::Tf32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// How the linears multiply.
    pub fn math(self) -> MatMath {
        match self {
            Precision::Tf32 => MatMath::Tf32,
            _ => MatMath::Exact,
        }
    }

    /// `"f32"`, `"tf32"`, `"f16"`, `"bf16"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Tf32 => "tf32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    /// Whether backend `B` runs this mode.
    pub fn supported_on<B: Ops>(self) -> bool {
        B::float_dtypes().contains(&self.dtype()) && (self != Precision::Tf32 || B::supports_tf32())
    }

    /// [`ModelError::Unsupported`] unless [`Precision::supported_on`].
    pub(crate) fn require<B: Ops>(self) -> Result<(), ModelError> {
        if self.supported_on::<B>() {
            return Ok(());
        }
        Err(ModelError::Unsupported {
            what: format!("precision {self}"),
            reason: format!(
                "this backend's ops take {:?} storage{}",
                B::float_dtypes().iter().map(ToString::to_string).collect::<Vec<_>>(),
                if B::supports_tf32() { " and TF32 math" } else { ", no TF32 math" }
            ),
        })
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown precision {s:?} (f32, tf32, f16, bf16)"))
    }
}
