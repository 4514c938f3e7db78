//! The stream-ordered caching allocator: same-stream reuse without waiting, no cross-stream reuse
//! before the free event completes, `record_use`, statistics, 64 threads at once. Needs a GPU.
#![cfg(feature = "cuda")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use streampool_core::{Backend, Stream};
use streampool_cuda::alloc::size_class;
use streampool_cuda::{CudaBackend, CudaOptions};

const HOLD: Duration = Duration::from_millis(500);

/// Compile the kernels the tests use first: a compile after a hold would outlast it.
fn warm(stream: &streampool_cuda::CudaStream) {
    let b = stream.alloc(4).unwrap();
    stream.fill_u32(&b, 0).unwrap();
    stream.mul_add_u32(&b, 1, 0).unwrap();
    stream.hold(Duration::from_micros(1)).unwrap();
    stream.synchronize().unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn same_stream_reuses_at_once_without_waiting() {
    let backend = open();
    let a = backend.new_stream(0).unwrap();
    warm(&a);
    let first = a.alloc(1 << 20).unwrap();
    let ptr = first.device_ptr();
    a.hold(HOLD).unwrap(); // the stream is busy
    a.fill_u32(&first, 7).unwrap(); // pending work on the block
    let t = Instant::now();
    drop(first);
    let again = a.alloc((1 << 20) - 100).unwrap(); // same class (1 MiB)
    let took = t.elapsed();
    assert_eq!(size_class((1 << 20) - 100), 1 << 20);
    assert_eq!(again.device_ptr(), ptr, "the block comes back to its own stream");
    assert!(took < HOLD / 3, "reuse on the same stream waited {took:?}");
    let stats = backend.memory_stats();
    let mine = stats.streams.iter().find(|s| s.slot == 0).unwrap();
    assert_eq!((mine.hits, mine.mallocs), (1, 2), "{stats:?}"); // warm() made one malloc
    assert_eq!(stats.in_use, 1 << 20);
    a.synchronize().unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn no_cross_stream_reuse_before_the_free_event_completes() {
    let backend = open();
    let (a, b) = (backend.new_stream(0).unwrap(), backend.new_stream(1).unwrap());
    warm(&a);
    let block = a.alloc(4096).unwrap();
    let ptr = block.device_ptr();
    a.hold(HOLD).unwrap();
    a.fill_u32(&block, 1).unwrap();
    drop(block); // event recorded behind the hold: not complete for ~300 ms
    let on_b = b.alloc(4096).unwrap();
    assert_ne!(on_b.device_ptr(), ptr, "handed to another stream while the first still uses it");
    a.synchronize().unwrap();
    let stolen = b.alloc(4096).unwrap();
    assert_eq!(stolen.device_ptr(), ptr, "a completed block is taken by another stream");
    let stats = backend.memory_stats();
    let sb = stats.streams.iter().find(|s| s.slot == 1).unwrap();
    assert_eq!(sb.steals, 1, "{stats:?}");
    assert_eq!(stats.cached, 512, "{stats:?}"); // warm()'s block
    drop((on_b, stolen));
    let stats = backend.memory_stats();
    assert_eq!((stats.in_use, stats.cached), (0, 2 * 4096 + 512));
    backend.empty_cache();
    assert_eq!(backend.memory_stats().cached, 0);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn record_use_keeps_other_streams_off_until_the_user_is_done() {
    let backend = open();
    let (a, b, c) = (
        backend.new_stream(0).unwrap(),
        backend.new_stream(1).unwrap(),
        backend.new_stream(2).unwrap(),
    );
    warm(&b);
    let block = a.alloc(8192).unwrap();
    let ptr = block.device_ptr();
    a.synchronize().unwrap();
    b.hold(HOLD).unwrap();
    b.fill_u32(&block, 3).unwrap(); // b writes a's block
    block.record_use(&b);
    drop(block);
    let on_c = c.alloc(8192).unwrap();
    assert_ne!(on_c.device_ptr(), ptr, "stolen while another user is still running");
    // The owner gets it back at once (its stream waits for b on the device), and later work on
    // a runs after b's fill.
    let back = a.alloc(8192).unwrap();
    assert_eq!(back.device_ptr(), ptr);
    a.mul_add_u32(&back, 2, 1).unwrap();
    let mut out = [0u8; 4];
    a.read(&back, 0, &mut out).unwrap();
    assert_eq!(u32::from_ne_bytes(out), 7, "a ran before b's fill");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn sixty_four_threads_allocate_and_free() {
    let options = CudaOptions {
        kernel_cache_dir: None,
        blas_workspace_bytes: Some(1 << 20),
        ..CudaOptions::default()
    };
    let backend = CudaBackend::open_with(0, options).unwrap();
    let streams: Vec<_> = (0..64).map(|t| backend.new_stream(t).unwrap()).collect();
    std::thread::scope(|s| {
        for (t, stream) in streams.iter().enumerate() {
            let t = t as u32;
            s.spawn(move || {
                let mut live = Vec::new();
                for i in 0..200u32 {
                    let words = 1 + ((t * 7919 + i * 104_729) % 50_000) as usize;
                    let buf = stream.alloc(words * 4).unwrap();
                    let value = t << 16 | i;
                    stream.fill_u32(&buf, value).unwrap();
                    stream.mul_add_u32(&buf, 3, 1).unwrap();
                    live.push((buf, value.wrapping_mul(3).wrapping_add(1), words));
                    if live.len() > 4 || i == 199 {
                        let (buf, want, words) = live.remove(0);
                        let mut out = vec![0u8; words * 4];
                        stream.read(&buf, 0, &mut out).unwrap();
                        for w in out.chunks_exact(4) {
                            assert_eq!(
                                u32::from_ne_bytes(w.try_into().unwrap()),
                                want,
                                "thread {t} iter {i}"
                            );
                        }
                    }
                }
                drop(live);
                stream.synchronize().unwrap();
            });
        }
    });
    let stats = backend.memory_stats();
    let (hits, steals, mallocs) = stats
        .streams
        .iter()
        .fold((0, 0, 0), |a, s| (a.0 + s.hits, a.1 + s.steals, a.2 + s.mallocs));
    eprintln!("64 threads: in use {}, cached {} B, peak {} B, hits {hits}, steals {steals}, mallocs {mallocs}", stats.in_use, stats.cached, stats.peak);
    assert_eq!(stats.in_use, 0);
    assert_eq!(hits + steals + mallocs, 64 * 200);
}
