//! [`MatMath`]: how matrix products are computed, one name from the models down to the GEMMs.

/// How a matrix product computes its products (the accumulation is f32 in every mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MatMath {
    /// Full products in the operands' type (f32 operands: no TF32).
    #[default]
    Exact,
    /// f32 operands multiplied with TF32 tensor-op math (10-bit mantissa products, f32
    /// accumulation). Only for f32 operands, on backends that have it.
    Tf32,
}
