//! Metal-specific checks beyond the conformance suite: unaligned `write`/`read`, one compile per
//! kernel under concurrent first use. Need an Apple GPU: ignored, never run (no Mac available).
#![cfg(all(feature = "metal", target_os = "macos"))]

use streampool_core::{Backend, Stream};
use streampool_metal::MetalBackend;

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn unaligned_write_then_read() {
    let backend = MetalBackend::open().unwrap();
    let stream = backend.new_stream(0).unwrap();
    let buf = backend.alloc(37).unwrap();
    stream.write(&buf, 0, &[0u8; 37]).unwrap();
    stream.write(&buf, 3, b"streampool").unwrap();
    let mut out = [0u8; 12];
    stream.read(&buf, 2, &mut out).unwrap();
    assert_eq!(&out, b"\0streampool\0");
    assert!(stream.write(&buf, 30, &[0u8; 8]).is_err(), "a write past the end is refused");
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn first_use_from_many_threads_compiles_once() {
    let backend = MetalBackend::open().unwrap();
    std::thread::scope(|s| {
        for slot in 0..16 {
            let backend = &backend;
            s.spawn(move || {
                let stream = backend.new_stream(slot).unwrap();
                let buf = backend.alloc(64).unwrap();
                stream.fill_u32(&buf, slot as u32).unwrap();
                stream.synchronize().unwrap();
            });
        }
    });
    // The library and the `fill_u32` pipeline.
    assert_eq!(backend.kernel_compiles(), 2);
}
