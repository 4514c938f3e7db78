//! The semantic tests every [`Ops`](crate::Ops) backend must pass, written once and expanded per
//! backend by [`ops_conformance_tests!`](crate::ops_conformance_tests): each op against a plain
//! f64 reference (simple loops, in [`reference`](mod@reference)) on MiniLM's shapes (hidden 384,
//! 12 heads, intermediate 1536, up to 128 tokens, batch 1..4) and odd ones, in every float type
//! the backend offers ([`Ops::float_dtypes`](crate::Ops::float_dtypes): f32 within 1e-4, f16
//! and bf16 within their rounding, see [`tolerance`]), and bad inputs refused with an
//! [`OpError`](crate::OpError), never a panic.
//!
//! Each case takes the device to run on, leases a stream of it, and panics with a message naming
//! the op, the shape, the element type and the first wrong value. The CPU backend runs the suite
//! in `tests/ops_conformance.rs`, CUDA in `tests/ops_conformance_cuda.rs` (ignored: it needs a
//! GPU). A new case is a function here plus one line in the macro: every backend then runs it.

mod decoder;
mod dense;
mod harness;
pub mod reference;
mod refusals;
mod sequence;

pub use decoder::{grouped_attention, mul, rms_norm, rotary};
pub use dense::{
    add_layer_norm, copy_strided, l2_normalize, linear, linear_add_layer_norm, linear_math,
    stream_alloc,
};
pub use harness::{assert_close, round, tolerance};
pub use refusals::bad_inputs;
pub use sequence::{attention, attention_qkv, bert_embeddings, conv1d, embedding, mean_pool, pool};

/// Expands the whole [`Ops`](crate::Ops) conformance suite into `#[test]` functions, one per
/// case, named after what they check (`linear_matches_reference`, `bad_inputs_are_refused`, ...),
/// each calling its case of [`conformance`](crate::conformance) with the device `$make()` returns
/// (`$make`: an expression for a `Fn() -> Device<B>`, a function's name usually; called once per
/// test). Attributes after it go on every test: `#[ignore = "..."]` for a backend that needs
/// hardware.
///
/// ```
/// use streampool_core::{Device, PoolConfig};
/// use streampool_cpu::CpuBackend;
///
/// fn cpu() -> Device<CpuBackend> {
///     Device::new(CpuBackend::new(), PoolConfig::with_capacity(2))
/// }
/// // In a test file: every op's case.
/// streampool_tensor::ops_conformance_tests!(cpu);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! ops_conformance_tests {
    ($make:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::ops_conformance_tests!(@cases ($make) ($(#[$attr])*)
            stream_alloc_gives_distinct_buffers => stream_alloc;
            linear_matches_reference => linear;
            linear_math_exact_and_tf32 => linear_math;
            add_layer_norm_matches_reference => add_layer_norm;
            linear_add_layer_norm_matches_reference => linear_add_layer_norm;
            attention_matches_reference => attention;
            attention_qkv_matches_reference => attention_qkv;
            embedding_matches_reference => embedding;
            bert_embeddings_matches_reference => bert_embeddings;
            conv1d_matches_reference => conv1d;
            mean_pool_matches_reference => mean_pool;
            pool_max_and_last_token_match_references => pool;
            l2_normalize_matches_reference => l2_normalize;
            copy_strided_copies_views_exactly => copy_strided;
            rms_norm_matches_reference => rms_norm;
            rotary_matches_reference => rotary;
            mul_matches_reference => mul;
            grouped_attention_matches_reference => grouped_attention;
            bad_inputs_are_refused => bad_inputs;
        );
    };
    // One case at a time, so that every test gets all the attributes.
    (@cases ($make:expr) ($(#[$attr:meta])*)) => {};
    (@cases ($make:expr) ($(#[$attr:meta])*) $test:ident => $case:ident; $($rest:tt)*) => {
        #[test]
        $(#[$attr])*
        fn $test() {
            $crate::conformance::$case(&($make)());
        }
        $crate::ops_conformance_tests!(@cases ($make) ($(#[$attr])*) $($rest)*);
    };
}
