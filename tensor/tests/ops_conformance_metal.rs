//! The ops conformance suite on the Metal backend (every op, f32 and f16, against the f64
//! references). Needs an Apple GPU: ignored, and never run by the project (no Mac available;
//! the kernels' arithmetic is tested on any machine by `streampool-metal-host`). On a Mac:
//! `scripts/test-metal`, or `cargo test -p streampool-tensor --features metal --test
//! ops_conformance_metal -- --ignored`.
#![cfg(all(feature = "metal", target_os = "macos"))]

use streampool_core::{Device, PoolConfig};
use streampool_metal::MetalBackend;

fn metal() -> Device<MetalBackend> {
    Device::new(
        MetalBackend::open().expect("open the default Metal device"),
        PoolConfig::with_capacity(2),
    )
}

streampool_tensor::ops_conformance_tests!(
    metal,
    #[ignore = "needs an Apple GPU (never run: no Mac available)"]
);
