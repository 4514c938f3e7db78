//! Without Metal (feature off, or not macOS) the backend builds and reports itself unavailable.
#![cfg(not(all(feature = "metal", target_os = "macos")))]

use streampool_core::BackendError;
use streampool_metal::MetalBackend;

#[test]
fn open_is_unavailable() {
    match MetalBackend::open() {
        Err(BackendError::Unavailable { backend, reason }) => {
            assert_eq!(backend, "metal");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn open_with_is_unavailable() {
    let options = streampool_metal::MetalOptions::default();
    assert!(options.serialize_encoders, "encoders are serialised by default");
    assert!(matches!(
        MetalBackend::open_with(options),
        Err(BackendError::Unavailable { backend: "metal", .. })
    ));
}
