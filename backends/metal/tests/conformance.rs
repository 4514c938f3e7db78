//! The core's conformance suite on the Metal backend. Needs an Apple GPU: every test is ignored,
//! and none has ever run (no Mac was available). On a Mac:
//! `cargo test -p streampool-metal --features metal -- --ignored`.
#![cfg(all(feature = "metal", target_os = "macos"))]

use streampool_core::{Device, PoolConfig};
use streampool_metal::MetalBackend;

fn make(config: PoolConfig) -> Device<MetalBackend> {
    Device::new(MetalBackend::open().expect("open the default Metal device"), config)
}

streampool_core::conformance_tests!(
    make,
    #[ignore = "needs an Apple GPU (never run: no Mac available)"]
);
