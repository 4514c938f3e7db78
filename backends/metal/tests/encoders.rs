//! Encoder stress: 3, 4 and 8 threads at once, each with its own stream, encoding the portable
//! ops (`fill_u32`, `mul_add_u32`: one compute encoder each) many times, every result read back
//! and checked exactly; once with encoders serialised across the device, once without (PyTorch
//! MPS's driver crashed with 3+ threads creating encoders at once). Needs an Apple GPU: ignored,
//! never run (no Mac available). On a Mac: `cargo test -p streampool-metal --features metal --
//! --ignored encoder`.
#![cfg(all(feature = "metal", target_os = "macos"))]

use std::sync::Barrier;

use streampool_core::{Backend, Stream};
use streampool_metal::{MetalBackend, MetalBuffer, MetalOptions, MetalStream};

/// u32 words of each thread's buffer.
const WORDS: usize = 4096;
/// Rounds of fill + mul-adds + read per thread.
const ROUNDS: u32 = 50;
/// `mul_add_u32` ops per round.
const MUL_ADDS: u32 = 8;
/// `mul_add_u32` ops encoded back to back without a read (many command buffers in flight: the
/// stream's back-pressure, which waits with no lock held, is exercised too).
const BURST: u32 = 2_000;

/// The multiplier of thread `t`'s `k`-th op (odd, so no information is lost).
fn mul(t: usize, k: u32) -> u32 {
    2 * (t as u32 * 131 + k) + 3
}

/// The addend of thread `t`'s `k`-th op in round `round`.
fn add(t: usize, k: u32, round: u32) -> u32 {
    (t as u32).wrapping_mul(0x9e37_79b9) ^ k.wrapping_mul(7919) ^ round
}

/// Read `buf` back and check every word is `expected`.
fn check(stream: &MetalStream, buf: &MetalBuffer, expected: u32, what: &str) {
    let mut out = vec![0u8; WORDS * 4];
    stream.read(buf, 0, &mut out).unwrap_or_else(|e| panic!("{what}: read: {e}"));
    for (i, word) in out.chunks_exact(4).enumerate() {
        let got = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]);
        assert_eq!(got, expected, "{what}: word {i}");
    }
}

/// One thread's work on its own stream of `backend`.
fn worker(backend: &MetalBackend, t: usize, start: &Barrier) {
    let stream = backend.new_stream(t).expect("a stream");
    let buf = backend.alloc(WORDS * 4).expect("a buffer");
    start.wait(); // every thread encodes at once
    for round in 0..ROUNDS {
        let seed = ((t as u32) << 24) | round;
        stream.fill_u32(&buf, seed).unwrap();
        let mut expected = seed;
        for k in 0..MUL_ADDS {
            let (m, a) = (mul(t, k), add(t, k, round));
            stream.mul_add_u32(&buf, m, a).unwrap();
            expected = expected.wrapping_mul(m).wrapping_add(a);
        }
        check(&stream, &buf, expected, &format!("thread {t}, round {round}"));
    }
    let mut expected = t as u32;
    stream.fill_u32(&buf, expected).unwrap();
    for k in 0..BURST {
        let (m, a) = (mul(t, k % 17), add(t, k, ROUNDS));
        stream.mul_add_u32(&buf, m, a).unwrap();
        expected = expected.wrapping_mul(m).wrapping_add(a);
    }
    check(&stream, &buf, expected, &format!("thread {t}, burst of {BURST}"));
}

fn stress(serialize_encoders: bool) {
    for threads in [3, 4, 8] {
        let options = MetalOptions { serialize_encoders, ..MetalOptions::default() };
        let backend = MetalBackend::open_with(options).expect("open the default Metal device");
        assert_eq!(backend.options(), options);
        let start = Barrier::new(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (backend, start) = (&backend, &start);
                    s.spawn(move || worker(backend, t, start))
                })
                .collect();
            for (t, handle) in handles.into_iter().enumerate() {
                assert!(handle.join().is_ok(), "{threads} threads: thread {t} failed");
            }
        });
    }
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn encoder_stress_serialized() {
    stress(true);
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn encoder_stress_concurrent() {
    stress(false);
}
