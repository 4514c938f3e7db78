//! [`Ops`](crate::Ops) for the Metal backend: the MSL kernels' op map ([`crate::msl`]), each
//! launch encoded on the [`MetalStream`]. In a build without Metal (the `metal` feature off, or
//! not macOS) the backend is a stand-in with no values, and so is this impl's reach: code
//! generic over backends names Metal without `cfg`, and opening it fails with
//! `BackendError::Unavailable`.

use streampool_metal::{MetalBackend, MetalBuffer, MetalStream};

use crate::msl::{Launch, MslKernels};
use crate::OpError;

#[cfg(all(feature = "metal", target_os = "macos"))]
impl MslKernels for MetalBackend {
    fn launch(stream: &MetalStream, l: Launch<'_, Self>) -> Result<(), OpError> {
        Ok(stream.launch(l.kernel, l.groups, l.threads, l.buffers, l.params)?)
    }

    fn stream_alloc(stream: &MetalStream, bytes: usize) -> Result<MetalBuffer, OpError> {
        Ok(stream.alloc(bytes)?)
    }

    fn same_buffer(a: &MetalBuffer, b: &MetalBuffer) -> bool {
        a.same_as(b)
    }
}

#[cfg(not(all(feature = "metal", target_os = "macos")))]
impl MslKernels for MetalBackend {
    fn launch(stream: &MetalStream, _: Launch<'_, Self>) -> Result<(), OpError> {
        stream.unreachable()
    }

    fn stream_alloc(stream: &MetalStream, _: usize) -> Result<MetalBuffer, OpError> {
        stream.unreachable()
    }

    fn same_buffer(a: &MetalBuffer, _: &MetalBuffer) -> bool {
        a.unreachable()
    }
}

crate::impl_msl_ops!(MetalBackend);
