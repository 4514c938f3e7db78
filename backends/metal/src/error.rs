//! Mapping of Metal failures (nil returns, `NSError`s, failed command buffers) to the core's
//! [`BackendError`].

use objc2::rc::autoreleasepool;
use objc2_foundation::NSError;
use streampool_core::BackendError;

/// Name of this backend in errors.
pub(crate) const BACKEND: &str = "metal";

/// The backend cannot run here.
pub(crate) fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable { backend: BACKEND, reason: reason.into() }
}

/// A Metal call that failed with an `NSError`.
pub(crate) fn ns_error(
    call: &'static str,
) -> impl FnOnce(objc2::rc::Retained<NSError>) -> BackendError {
    move |e| BackendError::Driver {
        backend: BACKEND,
        call,
        // MPS lesson: an autorelease pool around every Objective-C call path on worker
        // threads: the description is an autoreleased string.
        message: autoreleasepool(|_| e.localizedDescription().to_string()),
    }
}

/// A failure of the backend's own bookkeeping (a bug, reported rather than panicking).
pub(crate) fn internal(call: &'static str, message: &str) -> BackendError {
    BackendError::Driver { backend: BACKEND, call, message: format!("internal error: {message}") }
}

/// A Metal call that returned nil (Metal gives no reason for those).
pub(crate) fn nil(call: &'static str) -> BackendError {
    BackendError::Driver { backend: BACKEND, call, message: "returned nil".into() }
}
