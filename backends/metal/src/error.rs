//! Mapping of Metal failures (nil returns, `NSError`s, failed command buffers) to the core's
//! [`BackendError`].

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
        message: e.localizedDescription().to_string(),
    }
}

/// A Metal call that returned nil (Metal gives no reason for those).
pub(crate) fn nil(call: &'static str) -> BackendError {
    BackendError::Driver { backend: BACKEND, call, message: "returned nil".into() }
}
