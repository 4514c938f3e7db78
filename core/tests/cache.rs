//! The compile-once cache under real threads (the loom models in `loom.rs` check the protocol
//! exhaustively on small cases).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use streampool_core::{CacheError, CompileCache};

#[test]
fn sixty_four_threads_missing_one_key_compile_once() {
    let cache: CompileCache<String, Vec<u32>, String> = CompileCache::new();
    let calls = AtomicUsize::new(0);
    let barrier = Barrier::new(64);
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                barrier.wait();
                let v = cache
                    .get(&"kernel".to_string(), || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(vec![1, 2, 3])
                    })
                    .unwrap();
                assert_eq!(v, vec![1, 2, 3]);
            });
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.compiles(), 1);
    assert_eq!(cache.len(), 1);
}

#[test]
fn failure_reaches_every_waiter_and_the_next_caller_retries() {
    let cache: CompileCache<u32, u32, String> = CompileCache::new();
    let barrier = Barrier::new(16);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                barrier.wait();
                let r = cache.get(&1, || {
                    std::thread::sleep(Duration::from_millis(50));
                    Err("nvrtc: syntax error".to_string())
                });
                results.lock().unwrap().push(r);
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), 16);
    for r in &results {
        match r {
            Err(CacheError::Failed(e)) => assert_eq!(e.as_str(), "nvrtc: syntax error"),
            other => panic!("expected the compile error, got {other:?}"),
        }
    }
    assert!(cache.compiles() < 16, "waiters must share a failing compile, not each run one");
    assert!(cache.is_empty(), "a failure is not cached as a value");
    assert_eq!(cache.get(&1, || Ok(9)).unwrap(), 9);
}

#[test]
fn a_panicking_compile_is_an_error_not_a_hang() {
    let cache: CompileCache<u32, u32, String> = CompileCache::new();
    let r = cache.get(&3, || panic!("compiler crashed"));
    assert!(matches!(r, Err(CacheError::Panicked(ref m)) if m.contains("compiler crashed")));
    assert_eq!(cache.get(&3, || Ok(1)).unwrap(), 1);
}

#[test]
fn slow_compile_of_one_key_does_not_block_other_keys() {
    let cache: CompileCache<u32, u32, String> = CompileCache::new();
    let cache = &cache;
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            cache
                .get(&1, || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap(); // stays in its compile until we say so
                    Ok(1)
                })
                .unwrap()
        });
        started_rx.recv().unwrap();
        // Key 1 is mid-compile: key 2 compiles and hits regardless.
        assert_eq!(cache.get(&2, || Ok(2)).unwrap(), 2);
        assert_eq!(cache.get(&2, || unreachable!()).unwrap(), 2);
        release_tx.send(()).unwrap();
    });
    assert_eq!(cache.get(&1, || unreachable!()).unwrap(), 1);
}
