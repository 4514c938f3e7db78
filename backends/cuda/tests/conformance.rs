//! The core's conformance suite on the CUDA backend. Needs a GPU (and the `cuda` feature), so
//! every test is ignored by default; run them on a GPU machine with `-- --include-ignored`.

use streampool_core::{conformance as c, Device, PoolConfig};
use streampool_cuda::CudaBackend;

fn make(config: PoolConfig) -> Device<CudaBackend> {
    let backend = CudaBackend::open(0).expect("these tests need a CUDA GPU and --features cuda");
    Device::new(backend, config)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn in_order() {
    c::in_order(make);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn stress_64_threads_x_200() {
    c::stress(make, 64, 200);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn cold_start_64_threads() {
    c::cold_start(make, 64);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn thread_exit_releases_slot() {
    c::thread_exit_releases(make);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn concurrent_owners_hold_distinct_slots() {
    c::distinct_owners(make, 32);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn oversubscribed_4x() {
    c::oversubscribed(make, 8, 50);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn churn_10000_threads() {
    c::churn(make, 10_000, 64);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn device_sync_waits_for_other_threads() {
    c::device_sync_waits_for_others(make);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn device_sync_while_others_submit() {
    c::device_sync_under_load(make, 8);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn cross_stream_event_ordering() {
    c::cross_stream_events(make);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn event_host_wait_and_query() {
    c::event_host_wait_and_query(make);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn event_elapsed_errors_never_block() {
    c::event_elapsed(make);
}
