//! Metal-specific checks beyond the conformance suite: unaligned `write`/`read`, one compile per
//! kernel under concurrent first use, `launch`'s argument checks, many command buffers in
//! flight. Need an Apple GPU: ignored, never run (no Mac available).
#![cfg(all(feature = "metal", target_os = "macos"))]

use streampool_core::{Backend, BackendError, Stream};
use streampool_metal::{MetalBackend, MetalBuffer, MAX_LAUNCH_BUFFERS};

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

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn launch_checks_its_arguments() {
    let backend = MetalBackend::open().unwrap();
    let stream = backend.new_stream(0).unwrap();
    let buf = stream.alloc(64).unwrap();
    assert_eq!(buf.len(), 64);
    let nine: Vec<&MetalBuffer> = vec![&buf; MAX_LAUNCH_BUFFERS + 1];
    let invalid = |result: Result<(), BackendError>, what: &str| match result {
        Err(BackendError::InvalidArgument(message)) => {
            assert!(message.contains(what), "{what}: {message}")
        }
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    };
    invalid(stream.launch("stamp", 0, 1, &[], &[]), "0 threadgroups");
    invalid(stream.launch("stamp", 1, 0, &[], &[]), "0 threads");
    invalid(stream.launch("stamp", 1, 1, &nine, &[]), "9 buffers");
    invalid(stream.launch("stamp", 1, 1, &[], &[0u8; 4097]), "4097 bytes");
    invalid(stream.launch("stamp", 1, 1 << 20, &[], &[]), "maxTotalThreadsPerThreadgroup");
    match stream.launch("no_such_kernel", 1, 1, &[], &[]) {
        Err(BackendError::InvalidArgument(message)) => assert!(message.contains("no_such_kernel")),
        other => panic!("an unknown kernel: expected InvalidArgument, got {other:?}"),
    }
    // A valid launch of the no-op kernel, with a parameter block at PARAMS_INDEX it ignores.
    stream.launch("stamp", 4, 32, &[&buf], &[0u8; 16]).unwrap();
    stream.synchronize().unwrap();
}

#[test]
#[ignore = "needs an Apple GPU (never run: no Mac available)"]
fn many_unsynchronised_ops_then_one_read() {
    // Far more command buffers than a stream keeps in flight: the back-pressure wait (no lock
    // held) must let them all through, in order.
    let backend = MetalBackend::open().unwrap();
    let stream = backend.new_stream(0).unwrap();
    let buf = backend.alloc(1024).unwrap();
    stream.fill_u32(&buf, 1).unwrap();
    let mut expected = 1u32;
    for i in 0..5_000u32 {
        stream.mul_add_u32(&buf, 3, i).unwrap();
        expected = expected.wrapping_mul(3).wrapping_add(i);
    }
    let mut out = [0u8; 1024];
    stream.read(&buf, 0, &mut out).unwrap();
    for word in out.chunks_exact(4) {
        assert_eq!(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]), expected);
    }
}
