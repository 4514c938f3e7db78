//! The core's conformance suite on the CPU backend.

use streampool_core::{conformance as c, Device, PoolConfig};
use streampool_cpu::CpuBackend;

fn make(config: PoolConfig) -> Device<CpuBackend> {
    Device::new(CpuBackend::new(), config)
}

#[test]
fn in_order() {
    c::in_order(make);
}

#[test]
fn stress_64_threads_x_200() {
    c::stress(make, 64, 200);
}

#[test]
fn cold_start_64_threads() {
    c::cold_start(make, 64);
}

#[test]
fn thread_exit_releases_slot() {
    c::thread_exit_releases(make);
}

#[test]
fn concurrent_owners_hold_distinct_slots() {
    c::distinct_owners(make, 32);
}

#[test]
fn oversubscribed_4x() {
    c::oversubscribed(make, 8, 50);
}

#[test]
fn churn_10000_threads() {
    c::churn(make, 10_000, 64);
}

#[test]
fn device_sync_waits_for_other_threads() {
    c::device_sync_waits_for_others(make);
}

#[test]
fn device_sync_while_others_submit() {
    c::device_sync_under_load(make, 8);
}

#[test]
fn cross_stream_event_ordering() {
    c::cross_stream_events(make);
}

#[test]
fn event_host_wait_and_query() {
    c::event_host_wait_and_query(make);
}

#[test]
fn event_elapsed_errors_never_block() {
    c::event_elapsed(make);
}
