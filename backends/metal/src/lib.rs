//! # streampool-metal
//!
//! The Metal backend of streampool: [`MetalBackend`] implements [`streampool_core::Backend`] for
//! the system's default Apple GPU, so that many host threads can each drive their own stream of
//! one shared device.
//!
//! **Status: type-checked only, never run on Apple hardware.** No Mac was available: the code
//! compiles for `aarch64-apple-darwin` (`cargo check` / `clippy`, tests included) and the
//! conformance suite is written for it (`tests/conformance.rs`, ignored), but none of it — nor
//! the Metal Shading Language source of the kernels — has ever executed. Expect bugs on first
//! contact with a GPU; run `cargo test -p streampool-metal --features metal -- --ignored` on a
//! Mac first.
//!
//! - Each pool slot gets its own `MTLCommandQueue` ([`MetalStream`]). The command buffer and
//!   compute encoder being encoded are created lazily, behind that stream's own mutex, and
//!   committed by `synchronize`, `record`, or once a buffer holds 64 dispatches.
//!   `Stream::synchronize` commits and waits for every buffer committed before the call, from any
//!   thread; `Device::synchronize` does so for every stream.
//! - Events are `MTLSharedEvent`s with a growing value ([`MetalEvent`]): a record signals the
//!   next value on the recording stream's command buffer, a wait waits for it on the waiting
//!   stream's, and the host waits with a bounded, sleeping `waitUntilSignaledValue` (macOS 12 or
//!   later). Timing events use the `GPUEndTime` of the buffer that signals them.
//! - Buffers are `MTLBuffer`s in shared storage ([`MetalBuffer`]).
//! - The portable ops are Metal Shading Language kernels (`src/kernels.metal`) compiled at first
//!   use, once per process, through the core's `CompileCache`; `hold` is approximate (a host
//!   timer opening an event the GPU waits on: see `src/hold.rs`).
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
mod error;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod event;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod hold;
#[cfg(all(feature = "metal", target_os = "macos"))]
mod kernels;
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
#[cfg(all(feature = "metal", target_os = "macos"))]
pub use stream::MetalStream;

#[cfg(not(all(feature = "metal", target_os = "macos")))]
mod unavailable;
#[cfg(not(all(feature = "metal", target_os = "macos")))]
pub use unavailable::{MetalBackend, MetalBuffer, MetalEvent, MetalStream};
