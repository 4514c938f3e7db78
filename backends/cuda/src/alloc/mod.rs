//! The stream-ordered caching allocator.
//!
//! Every stream has an `Arena`: free lists of blocks keyed by size class, behind the stream's
//! own lock. [`CudaStream::alloc`](crate::CudaStream::alloc) takes a block of the right class
//! from its own list first; a block freed by a buffer's drop goes back to the list of the stream
//! that allocated it, with an event recorded on that stream at free time:
//!
//! - **the same stream** reuses the block at once, without waiting: its later work runs after
//!   the earlier work on the block anyway (stream order);
//! - **another stream** may take the block only once that event has completed (checked with a
//!   non-blocking query), i.e. when the first stream's work on it is done;
//! - streams that used the buffer besides its own ([`CudaBuffer::record_use`]) get events of
//!   their own at free time; the owning stream waits for them on the device (`cuStreamWaitEvent`)
//!   before reusing the block, other streams take it only when they have completed.
//!
//! Only a miss on the stream's own list touches anything shared: it looks through the other
//! streams' lists (one lock at a time, never two), then calls `cuMemAlloc`; when that runs out
//! of memory, every cached block is released and the allocation retried once.
//! Long-lived data such as weights should use [`Backend::alloc`](streampool_core::Backend::alloc)
//! (or [`CudaBackend::upload`](crate::CudaBackend::upload)): one allocation read by every
//! stream, never pooled.
//!
//! [`CudaBuffer::record_use`]: crate::CudaBuffer::record_use

mod arena;
mod registry;
mod size_class;

pub(crate) use arena::Arena;
pub(crate) use registry::Registry;
pub use registry::{MemoryStats, StreamMemoryStats};
pub use size_class::size_class;
