//! CUDA-specific behaviour beyond the core's conformance suite: kernel compilation (once per
//! process, once per machine), stream and context settings, bounds, frees. Needs a GPU: ignored
//! by default, run with `-- --include-ignored` on a GPU machine.
#![cfg(feature = "cuda")]

use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use streampool_core::{
    conformance as c, Backend, BackendError, Device, Event, PoolConfig, Stream, Timing,
};
use streampool_cuda::cudarc::{cublas, driver::sys};
use streampool_cuda::{CudaBackend, CudaOptions};

fn open(cache: Option<PathBuf>) -> CudaBackend {
    let options = CudaOptions { kernel_cache_dir: cache, ..CudaOptions::default() };
    CudaBackend::open_with(0, options).expect("needs a CUDA GPU")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streampool-cuda-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn device_properties() {
    let backend = open(None);
    let (major, minor) = backend.compute_capability();
    assert_eq!(backend.arch(), format!("sm_{major}{minor}"));
    assert!(!backend.name().is_empty());
    assert!(!backend.context().is_event_tracking(), "cudarc's event tracking must be off");
    eprintln!(
        "{} (cc {major}.{minor}, {}), driver {}, {} GPU(s)",
        backend.name(),
        backend.arch(),
        backend.driver_version(),
        CudaBackend::device_count()
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn streams_are_non_blocking_with_their_own_cublas_handle() {
    let backend = open(None);
    let (a, b) = (backend.new_stream(0).unwrap(), backend.new_stream(1).unwrap());
    for stream in [&a, &b] {
        let mut flags = 0u32;
        // SAFETY: the stream is live; cuStreamGetFlags writes one unsigned int.
        unsafe { sys::cuStreamGetFlags(stream.cu_stream(), &mut flags) }.result().unwrap();
        assert_eq!(flags, sys::CUstream_flags::CU_STREAM_NON_BLOCKING as u32);
        let state = stream.state();
        let mut bound: cublas::sys::cudaStream_t = std::ptr::null_mut();
        // SAFETY: the handle is live (we hold the stream's state lock); one out-pointer.
        unsafe { cublas::sys::cublasGetStream_v2(*state.blas.cublas().handle(), &mut bound) }
            .result()
            .unwrap();
        assert_eq!(bound as usize, stream.cu_stream() as usize, "cuBLAS bound to another stream");
    }
    assert_ne!(a.cu_stream(), b.cu_stream());
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn kernels_compile_once_under_contention() {
    let device = Device::new(open(None), PoolConfig::with_capacity(16));
    let barrier = Barrier::new(16);
    std::thread::scope(|s| {
        for t in 0..16u32 {
            let (device, barrier) = (&device, &barrier);
            s.spawn(move || {
                let buf = device.alloc(c::WORDS * 4).unwrap();
                let lease = device.acquire().unwrap();
                barrier.wait();
                c::run_chain::<CudaBackend>(lease.stream(), &buf, t, &[(3, t)]);
            });
        }
    });
    assert_eq!(device.backend().kernel_compiles(), 1, "u32_ops.cu compiled more than once");
    device.with_stream(|s| s.hold(Duration::from_micros(10)).unwrap()).unwrap();
    assert_eq!(device.backend().kernel_compiles(), 2);
    device.synchronize().unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn disk_cache_spares_nvrtc_after_a_restart() {
    let dir = scratch("disk-cache");
    let run = |backend: CudaBackend| {
        let device = Device::new(backend, PoolConfig::with_capacity(1));
        let buf = device.alloc(64).unwrap();
        let lease = device.acquire().unwrap();
        lease.stream().hold(Duration::from_micros(10)).unwrap();
        c::run_chain::<CudaBackend>(lease.stream(), &buf, 9, &[(5, 1)]);
        let b = device.backend();
        (b.kernel_compiles(), b.kernel_disk_hits())
    };
    let started = Instant::now();
    assert_eq!(run(open(Some(dir.clone()))), (2, 0), "first start: compile both modules");
    let cold = started.elapsed();
    let started = Instant::now();
    assert_eq!(run(open(Some(dir.clone()))), (0, 2), "restart: load both from disk");
    let warm = started.elapsed();
    let arch = open(None).arch().to_string();
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.contains(&arch) && f.ends_with(".cubin")), "{files:?}");
    // A damaged entry is recompiled, not fatal.
    for f in &files {
        std::fs::write(dir.join(f), b"not a cubin").unwrap();
    }
    assert_eq!(run(open(Some(dir.clone()))), (2, 2), "damaged entries: recompile");
    eprintln!("first start {cold:?} (NVRTC), restart {warm:?} (disk cache)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn offsets_bounds_and_partial_words() {
    let device = Device::new(open(None), PoolConfig::with_capacity(1));
    let lease = device.acquire().unwrap();
    let s = lease.stream();
    let buf = device.alloc(10).unwrap(); // two whole u32 words and two spare bytes
    assert_eq!(CudaBackend::buffer_len(&buf), 10);
    s.write(&buf, 0, &[0xAB; 10]).unwrap();
    s.fill_u32(&buf, 0x0102_0304).unwrap();
    s.write(&buf, 4, &[9, 9]).unwrap();
    let mut out = [0u8; 10];
    s.read(&buf, 0, &mut out).unwrap();
    assert_eq!(out, [4, 3, 2, 1, 9, 9, 2, 1, 0xAB, 0xAB]);
    let mut two = [0u8; 2];
    s.read(&buf, 8, &mut two).unwrap();
    assert_eq!(two, [0xAB, 0xAB]);

    let invalid = |r: Result<(), BackendError>| {
        assert!(matches!(r, Err(BackendError::InvalidArgument(_))), "got {r:?}")
    };
    invalid(s.write(&buf, 8, &[0; 3]));
    invalid(s.write(&buf, usize::MAX, &[0; 2]));
    invalid(s.read(&buf, 9, &mut [0; 2]));
    let other = device.alloc(12).unwrap();
    invalid(s.copy(&buf, &other));
    let empty = device.alloc(0).unwrap();
    s.fill_u32(&empty, 1).unwrap();
    s.read(&empty, 0, &mut []).unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn large_buffers_use_the_whole_grid() {
    let device = Device::new(open(None), PoolConfig::with_capacity(1));
    let lease = device.acquire().unwrap();
    let words = 64 << 20; // 256 MiB: far more words than threads in the grid
    let buf = device.alloc(words * 4).unwrap();
    lease.stream().fill_u32(&buf, 3).unwrap();
    lease.stream().mul_add_u32(&buf, 7, 1).unwrap();
    let mut bytes = vec![0u8; words * 4];
    lease.stream().read(&buf, 0, &mut bytes).unwrap();
    let bad = bytes.chunks_exact(4).position(|w| u32::from_le_bytes(w.try_into().unwrap()) != 22);
    assert_eq!(bad, None, "word {bad:?} was not computed");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn dropping_a_buffer_waits_for_work_that_uses_it() {
    let device = Device::new(open(None), PoolConfig::with_capacity(2));
    let (a, b) = (device.acquire().unwrap(), device.acquire().unwrap());
    let keep = device.alloc(c::WORDS * 4).unwrap();
    let doomed = device.alloc(c::WORDS * 4).unwrap();
    // Compile the kernels first: a compile after the hold would outlast it.
    a.stream().fill_u32(&keep, 0).unwrap();
    a.stream().hold(Duration::from_micros(1)).unwrap();
    a.stream().synchronize().unwrap();
    a.stream().hold(Duration::from_millis(200)).unwrap();
    a.stream().fill_u32(&doomed, 5).unwrap();
    a.stream().copy(&doomed, &keep).unwrap();
    let started = Instant::now();
    drop(doomed); // the last handle: frees the memory, after stream A is done with it
    assert!(started.elapsed() >= Duration::from_millis(100), "freed while still in use");
    assert!(c::read_u32::<CudaBackend>(a.stream(), &keep).iter().all(|&x| x == 5));
    b.stream().synchronize().unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn hold_lasts_as_long_as_asked() {
    let device = Device::new(open(None), PoolConfig::with_capacity(1));
    let lease = device.acquire().unwrap();
    let s = lease.stream();
    let (start, end) =
        (device.new_event(Timing::Enabled).unwrap(), device.new_event(Timing::Enabled).unwrap());
    s.hold(Duration::from_micros(1)).unwrap(); // compile first
    for ms in [1u64, 10, 50] {
        s.record(&start).unwrap();
        s.hold(Duration::from_millis(ms)).unwrap();
        s.record(&end).unwrap();
        end.synchronize().unwrap();
        let took = end.elapsed_since(&start).unwrap();
        eprintln!("hold({ms} ms) took {took:?} on the GPU");
        assert!(took >= Duration::from_millis(ms) * 9 / 10, "hold({ms} ms) took {took:?}");
        assert!(took < Duration::from_millis(ms) * 3 + Duration::from_millis(2));
    }
}
