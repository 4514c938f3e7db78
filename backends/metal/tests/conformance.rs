//! The core's conformance suite on the Metal backend. Needs an Apple GPU: every test is ignored,
//! and none has ever run (no Mac was available). On a Mac:
//! `cargo test -p streampool-metal --features metal -- --ignored`.
#![cfg(all(feature = "metal", target_os = "macos"))]

use streampool_core::{conformance as c, Device, PoolConfig};
use streampool_metal::MetalBackend;

fn make(config: PoolConfig) -> Device<MetalBackend> {
    Device::new(MetalBackend::open().expect("open the default Metal device"), config)
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn in_order() {
    c::in_order(make);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn stress_64_threads_x_200() {
    c::stress(make, 64, 200);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn cold_start_64_threads() {
    c::cold_start(make, 64);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn thread_exit_releases_slot() {
    c::thread_exit_releases(make);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn concurrent_owners_hold_distinct_slots() {
    c::distinct_owners(make, 32);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn oversubscribed_4x() {
    c::oversubscribed(make, 8, 50);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn churn_10000_threads() {
    c::churn(make, 10_000, 64);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn device_sync_waits_for_other_threads() {
    c::device_sync_waits_for_others(make);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn device_sync_while_others_submit() {
    c::device_sync_under_load(make, 8);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn cross_stream_event_ordering() {
    c::cross_stream_events(make);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn event_host_wait_and_query() {
    c::event_host_wait_and_query(make);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn event_elapsed_errors_never_block() {
    c::event_elapsed(make);
}
