//! # streampool-metal
//!
//! The Metal backend of streampool: [`MetalBackend`] implements [`streampool_core::Backend`] for
//! the system's default Apple GPU, so that many host threads can each drive their own stream of
//! one shared device.
//!
//! **Status: type-checked only, never run on Apple hardware.** No Mac was available: the code
//! compiles for `aarch64-apple-darwin` (`cargo check` / `clippy`, tests included) and the
//! conformance suite is written for it (`tests/conformance.rs`, ignored), but none of it — nor
//! the Metal Shading Language source of the kernels — has ever executed (the kernels' arithmetic
//! is tested on Linux by `streampool-metal-host`, which runs the same source compiled as C++).
//! Expect bugs on first contact with a GPU; on a Mac, `scripts/test-metal` runs the whole suite.
//!
//! - Each pool slot gets its own `MTLCommandQueue` ([`MetalStream`]). The command buffer being
//!   encoded is created lazily, behind that stream's own mutex, and committed by `synchronize`,
//!   `record`, or once it holds 64 kernels. Every kernel gets a compute encoder of its own,
//!   created, used and ended within the call, under a device-wide encoder permit taken before
//!   the stream's lock ([`MetalOptions`]: one permit, i.e. serialised encoders, by default).
//!   `Stream::synchronize` commits and waits for every buffer committed before the call, from
//!   any thread; `Device::synchronize` does so for every stream. No thread blocks while holding
//!   a stream's lock: a stream keeps at most 16 committed buffers uncompleted, waiting for the
//!   oldest with no lock held, so `commandBuffer` (which blocks at the queue's limit) never
//!   does.
//! - Each stream has a completion thread that waits for its committed command buffers in
//!   order, records what became of each (status, `GPUEndTime`, Metal's error) in a small
//!   record, and releases the buffer at once: nothing keeps a completed command buffer.
//! - Events are `MTLSharedEvent`s with a growing value ([`MetalEvent`]): a record signals the
//!   next value on the recording stream's command buffer, a wait waits for it on the waiting
//!   stream's, and the host waits with a bounded, sleeping `waitUntilSignaledValue` (macOS 12 or
//!   later: [`MetalBackend::open`] refuses older systems). Timing events use the `GPUEndTime`
//!   in the completion record of the buffer that signals them; `elapsed_since` never blocks.
//! - Buffers are `MTLBuffer`s in shared storage ([`MetalBuffer`]).
//! - The kernels are Metal Shading Language, the files of `backends/metal/kernels/` compiled as
//!   one library at first use (fast math off, MSL 2.4), once per device, through the core's
//!   `CompileCache`; [`MetalStream::launch`] dispatches any of them with the binding convention
//!   of `kernels/params.h`. `hold` is approximate (a host timer opening an event the GPU waits
//!   on: see `src/hold.rs`).
//! - Every Objective-C call path that can run on a worker thread runs inside an autorelease
//!   pool, so long-lived threads that never drain one do not accumulate autoreleased objects.
//!
//! These follow the lessons of PyTorch MPS's crashes when threads run a model at once; each
//! place that follows one says so in a `// MPS lesson:` comment.
//!
//! Everything Metal sits behind the `metal` feature and builds only for macOS. Without the
//! feature, or on any other system, the crate still builds and [`MetalBackend::open`] returns
//! [`streampool_core::BackendError::Unavailable`].
//!
//! ```
//! use streampool_core::BackendError;
//! use streampool_metal::MetalBackend;
//! match MetalBackend::open() {
//!     Ok(backend) => println!("using {backend:?}"),
//!     Err(BackendError::Unavailable { reason, .. }) => println!("no Metal: {reason}"),
//!     Err(e) => panic!("{e}"),
//! }
//! ```
#![warn(missing_docs)]
// The stub has no unsafe code at all; the real backend's unsafe blocks each carry a `// SAFETY:`.
#![cfg_attr(not(all(feature = "metal", target_os = "macos")), forbid(unsafe_code))]

#[cfg(all(feature = "metal", target_os = "macos"))]
mod backend;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod buffer;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod commands;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod completion;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod encoders;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod error;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod event;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod hold;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod kernels;
mod options;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod os;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod stream;

#[cfg(all(feature = "metal", target_os = "macos"))]
pub use backend::MetalBackend;
#[cfg(all(feature = "metal", target_os = "macos"))]
pub use buffer::MetalBuffer;
#[cfg(all(feature = "metal", target_os = "macos"))]
pub use event::MetalEvent;
/// The objc2-metal crate this backend is built on, for code that needs the raw API.
#[cfg(all(feature = "metal", target_os = "macos"))]
pub use objc2_metal;
pub use options::MetalOptions;
#[cfg(all(feature = "metal", target_os = "macos"))]
pub use stream::{MetalStream, MAX_LAUNCH_BUFFERS, PARAMS_INDEX};

#[cfg(not(all(feature = "metal", target_os = "macos")))]
mod unavailable;
#[cfg(not(all(feature = "metal", target_os = "macos")))]
pub use unavailable::{
    MetalBackend, MetalBuffer, MetalEvent, MetalStream, MAX_LAUNCH_BUFFERS, PARAMS_INDEX,
};
