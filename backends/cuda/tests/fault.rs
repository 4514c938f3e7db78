//! An asynchronous GPU fault, kept for the stream's owner: no synchronize of another thread (or
//! of the device) takes it. CUDA faults are sticky for the whole context, which keeps the rule;
//! this checks it. A test binary of its own, with one test: the fault ends the context for the
//! rest of the process.
#![cfg(feature = "cuda")]

mod common;

use std::time::Duration;

use common::open;
use streampool_core::{BackendError, Device, PoolConfig, Stream};
use streampool_cuda::cudarc::driver::LaunchConfig;
use streampool_cuda::cudarc::nvrtc::Ptx;

/// A kernel that traps at once (PTX, JIT-compiled by the driver: no NVRTC needed).
const TRAP: &str = "
.version 7.0
.target sm_70
.address_size 64
.visible .entry trap_now()
{
    trap;
}
";

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_fault_reaches_its_owner_after_other_threads_synchronise() {
    let device = Device::new(open(), PoolConfig::with_capacity(2));
    let (lease, busy) = (device.acquire().unwrap(), device.acquire().unwrap());
    let s = lease.stream();
    let module = s.raw().context().load_module(Ptx::from_src(TRAP)).unwrap();
    let trap = module.load_function("trap_now").unwrap();
    busy.stream().hold(Duration::from_millis(50)).unwrap();
    let mut launch = s.raw().launch_builder(&trap);
    // SAFETY: `trap_now` takes no arguments and touches no memory; one block of one thread.
    unsafe { launch.launch(LaunchConfig::for_num_elems(1)) }.unwrap();
    std::thread::scope(|t| {
        t.spawn(|| {
            let e = device.synchronize().unwrap_err();
            println!("another thread's device synchronize: {e}");
            assert!(s.synchronize().is_err(), "and its stream synchronize");
        });
    });
    let e = s.synchronize().unwrap_err();
    println!("the owner's synchronize: {e}");
    assert!(!matches!(e, BackendError::StreamCapturing { .. }), "{e}");
}
