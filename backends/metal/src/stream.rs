//! A pool slot's stream: its own `MTLCommandQueue`, the command buffer being encoded behind this
//! stream's own lock, and a completion thread that releases committed buffers as they complete
//! (completion.rs). The portable ops and [`MetalStream::launch`] are compute dispatches of the
//! kernels in `backends/metal/kernels/`, each with an encoder of its own.
//!
//! The lessons of PyTorch MPS's crashes under concurrent threads, and how this follows them
//! (each site carries a `// MPS lesson:` comment):
//! - command buffers created lazily per stream without a lock: here the open buffer lives in
//!   [`Commands`], reachable only through `MetalStream::commands`, this stream's mutex;
//! - encoders left open between calls and created by many threads at once (the driver crashed
//!   with 3+): every op creates, uses and ends its own encoder, under a device-wide permit
//!   taken before the stream's lock ([`crate::MetalOptions`]);
//! - blocking under a lock: `commandBuffer` blocks at the queue's limit of uncompleted buffers;
//!   an op first waits, without any lock, until the stream is below [`MAX_IN_FLIGHT`];
//! - completed command buffers retained: the completion thread drops each as it completes;
//!   events keep a small record instead;
//! - autoreleased objects piling up on threads that never drain: every Objective-C call path
//!   here runs in an autorelease pool;
//! - a device synchronize that waited only for the caller's stream: `Device::synchronize` (core)
//!   calls [`Stream::synchronize`] on every stream, and this one commits and waits for every
//!   buffer committed before the call, whichever thread asks;
//! - event record/wait that ignored the stream argument: `record` signals on *this* stream's
//!   command buffer, `wait_event` waits on *this* stream's.

use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_foundation::NSString;
use objc2_metal::{
    MTLCommandBuffer, MTLCommandQueue, MTLComputeCommandEncoder, MTLComputePipelineState,
    MTLDevice, MTLSize,
};
use streampool_core::{BackendError, Event, Stream, Timing};

use crate::backend::{MetalBackend, Shared};
use crate::buffer::MetalBuffer;
use crate::commands::{Commands, MAX_IN_FLIGHT};
use crate::completion::Tracker;
use crate::error;
use crate::event::MetalEvent;
use crate::hold::Gate;
use crate::kernels::{name, Pipeline};

/// Threads per threadgroup of the portable ops' kernels (at most; the pipeline may allow fewer).
const GROUP: usize = 256;
/// Threadgroups per portable op's dispatch, at most: the kernels loop over the rest
/// (grid-stride).
const MAX_GROUPS: usize = 1024;
/// Uncompleted command buffers the queue allows (`newCommandQueueWithMaxCommandBufferCount`):
/// `commandBuffer` would block at this count. A stream keeps at most [`MAX_IN_FLIGHT`]
/// committed plus one open, far below, so that it never does.
const QUEUE_CAPACITY: usize = 64;
const _: () = assert!((MAX_IN_FLIGHT as usize) + 1 < QUEUE_CAPACITY);
/// Buffers a [`MetalStream::launch`] binds at most (indices `0..8`).
pub const MAX_LAUNCH_BUFFERS: usize = 8;
/// Index of a launch's parameter block (`SP_PARAMS_INDEX` in `kernels/params.h`).
pub const PARAMS_INDEX: usize = 8;
/// Bytes `setBytes:length:atIndex:` accepts at most (Metal's documented limit is 4 KiB).
const MAX_PARAMS_BYTES: usize = 4096;

/// A portable op's kernel argument, bound at the index of its position.
enum Arg<'a> {
    Buffer(&'a MetalBuffer),
    U32(u32),
    U64(u64),
}

/// Stream of the Metal backend.
pub struct MetalStream {
    slot: usize,
    /// This stream's queue (no other stream submits to it). `Send + Sync` in objc2-metal.
    queue: Retained<ProtocolObject<dyn MTLCommandQueue>>,
    shared: Arc<Shared>,
    /// This stream's own lock. It guards the command buffer being encoded (created lazily by
    /// the first op after a commit; committed by `synchronize`, `record`, or once it holds 64
    /// kernels), the count of buffers committed, and the hold gate's value. Taken by every
    /// submitter (the owner, or threads it shares the stream with) for the whole of each op, so
    /// ops from several threads are encoded one after the other, each whole; and by any thread
    /// in `synchronize` only to commit and read the count: the wait runs without it.
    ///
    /// Nobody blocks while holding it: the device's encoder permit is taken *before* it (never
    /// while holding it); room for a new command buffer is waited for before it is taken (see
    /// [`MetalStream::enter`]); kernel compiles happen before it is taken. Taken after it, and
    /// only briefly: an event's lock (`record`, `wait_event`) and the completion tracker's.
    commands: Mutex<Commands>,
    /// The completion thread's side: committed buffers, the count completed, failures.
    tracker: Arc<Tracker>,
    gate: Gate,
}

impl MetalStream {
    pub(crate) fn new(shared: &Arc<Shared>, slot: usize) -> Result<Self, BackendError> {
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads
        // (streams are created lazily by whichever thread first owns the slot).
        autoreleasepool(|_| {
            // MPS lesson: `commandBuffer` blocks at the queue's limit: make the limit explicit,
            // and far above what a stream keeps uncompleted (`MAX_IN_FLIGHT`).
            let queue = shared
                .device
                .newCommandQueueWithMaxCommandBufferCount(QUEUE_CAPACITY)
                .ok_or_else(|| error::nil("newCommandQueueWithMaxCommandBufferCount"))?;
            // Named for Xcode's GPU captures and Metal's error messages.
            queue.setLabel(Some(&NSString::from_str(&format!("streampool slot {slot}"))));
            let gate = Gate::new(&shared.device)?;
            // Last: nothing after it can fail, so no completion thread is left without a stream.
            let tracker = Tracker::start(slot)?;
            Ok(Self {
                slot,
                queue,
                shared: shared.clone(),
                commands: Mutex::new(Commands::new()),
                tracker,
                gate,
            })
        })
    }

    /// The command queue (for code that needs the raw API). Work submitted to it directly is
    /// not ordered with the work this type encodes until that is committed (`synchronize`).
    pub fn queue(&self) -> &ProtocolObject<dyn MTLCommandQueue> {
        &self.queue
    }

    /// Encode kernel `kernel` of the library over `groups` 1-D threadgroups of `threads`
    /// threads, with `buffers` bound at indices 0, 1, ... (offset 0) and `params` bound with
    /// `setBytes` at index [`PARAMS_INDEX`] (`SP_PARAMS_INDEX`; not bound when empty). Compiles
    /// the kernel's pipeline at first use. Reports a failure of this thread's earlier work on
    /// the stream, if any (the launch is encoded all the same).
    ///
    /// [`BackendError::InvalidArgument`] for `groups == 0`, `threads == 0`, more threads than
    /// the pipeline's `maxTotalThreadsPerThreadgroup`, more than [`MAX_LAUNCH_BUFFERS`] buffers,
    /// more than 4 KiB of `params`, or a kernel the library lacks.
    pub fn launch(
        &self,
        kernel: &'static str,
        groups: usize,
        threads: usize,
        buffers: &[&MetalBuffer],
        params: &[u8],
    ) -> Result<(), BackendError> {
        let invalid =
            |what: String| BackendError::InvalidArgument(format!("launch {kernel}: {what}"));
        if groups == 0 {
            return Err(invalid("0 threadgroups: a dispatch needs at least one".into()));
        }
        if u32::try_from(groups).is_err() {
            return Err(invalid(format!(
                "{groups} threadgroups: at most {} in one dispatch",
                u32::MAX
            )));
        }
        if threads == 0 {
            return Err(invalid("0 threads per threadgroup: at least one is needed".into()));
        }
        if buffers.len() > MAX_LAUNCH_BUFFERS {
            return Err(invalid(format!(
                "{} buffers: at most {MAX_LAUNCH_BUFFERS} (indices 0..{MAX_LAUNCH_BUFFERS}; index \
                 {PARAMS_INDEX} holds the parameter block)",
                buffers.len()
            )));
        }
        if params.len() > MAX_PARAMS_BYTES {
            return Err(invalid(format!(
                "a parameter block of {} bytes: setBytes takes at most {MAX_PARAMS_BYTES}",
                params.len()
            )));
        }
        let pipeline = self.shared.kernels.pipeline(&self.shared.device, kernel)?;
        let max = pipeline.maxTotalThreadsPerThreadgroup();
        if threads > max {
            return Err(invalid(format!(
                "{threads} threads per threadgroup: its pipeline allows at most {max} on this \
                 device (maxTotalThreadsPerThreadgroup)"
            )));
        }
        self.encode(&pipeline, groups, threads, |encoder| {
            for (index, buffer) in buffers.iter().enumerate() {
                bind_buffer(encoder, index, buffer);
            }
            bind_bytes(encoder, PARAMS_INDEX, params);
        })
    }

    /// A buffer of `bytes` for use on this stream (`Ops::stream_alloc`): a new `MTLBuffer` in
    /// shared storage, contents unspecified. Not stream-ordered, and it need not be: Metal keeps
    /// a buffer alive while any command buffer that uses it is incomplete, so dropping the
    /// handle right after enqueuing work on it is safe.
    pub fn alloc(&self, bytes: usize) -> Result<MetalBuffer, BackendError> {
        MetalBuffer::alloc(&self.shared.device, bytes)
    }

    fn lock(&self) -> MutexGuard<'_, Commands> {
        // Poisoned: an op panicked mid-encoding. The handles are still valid; the worst case is
        // an op half encoded, which a later commit still submits.
        self.commands.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take what an op needs, in the one order that cannot deadlock: `permit()` first (the
    /// device's encoder permit, or `()`), then this stream's lock, with room for a new command
    /// buffer. At [`MAX_IN_FLIGHT`] uncompleted buffers, give both back, wait for the oldest
    /// holding nothing, and start over.
    fn enter<P>(&self, permit: impl Fn() -> P) -> (P, MutexGuard<'_, Commands>) {
        loop {
            // MPS lesson: the device-level encoder permit is taken before the stream's lock,
            // never while holding it, so nobody waits for another stream under a stream lock.
            let p = permit();
            let commands = self.lock();
            let Some(oldest) = commands.room(&self.tracker) else {
                return (p, commands);
            };
            drop(commands);
            drop(p);
            // MPS lesson: never block under the stream's lock: wait here, holding nothing, for
            // the queue to drop below its limit instead of inside `commandBuffer`.
            self.tracker.wait_completed(oldest);
        }
    }

    /// Encode one kernel: `pipeline` over `groups` threadgroups of `threads`, its arguments
    /// bound by `bind`; then report this thread's earlier failure, if any.
    fn encode(
        &self,
        pipeline: &Pipeline,
        groups: usize,
        threads: usize,
        bind: impl FnOnce(&ProtocolObject<dyn MTLComputeCommandEncoder>),
    ) -> Result<(), BackendError> {
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads
        // (the command buffer and the encoder are returned autoreleased).
        autoreleasepool(|_| {
            let (permit, mut commands) = self.enter(|| self.shared.encoders.acquire());
            commands.encode_kernel(&self.queue, &permit, |encoder| {
                encoder.setComputePipelineState(pipeline);
                bind(encoder);
                encoder.dispatchThreadgroups_threadsPerThreadgroup(
                    MTLSize { width: groups, height: 1, depth: 1 },
                    MTLSize { width: threads, height: 1, depth: 1 },
                );
            })?;
            drop(permit);
            commands.commit_if_full(&self.tracker);
            drop(commands);
            self.tracker.failures.take_own(self.slot)
        })
    }

    /// Encode a portable op's `kernel` over `items` work items with `args` bound at indices 0,
    /// 1, ...; reports a failure of earlier work, if any (the op is encoded all the same).
    fn dispatch(
        &self,
        kernel: &'static str,
        args: &[Arg<'_>],
        items: usize,
    ) -> Result<(), BackendError> {
        let pipeline = self.shared.kernels.pipeline(&self.shared.device, kernel)?;
        let width = pipeline.maxTotalThreadsPerThreadgroup().clamp(1, GROUP);
        let groups = items.div_ceil(width).clamp(1, MAX_GROUPS);
        self.encode(&pipeline, groups, width, |encoder| {
            for (index, arg) in args.iter().enumerate() {
                match arg {
                    Arg::Buffer(buffer) => bind_buffer(encoder, index, buffer),
                    Arg::U32(value) => bind_bytes(encoder, index, &value.to_ne_bytes()),
                    Arg::U64(value) => bind_bytes(encoder, index, &value.to_ne_bytes()),
                }
            }
        })
    }

    /// Copy `bytes` bytes from `src` at `src_offset` to `dst` at `dst_offset`, on the GPU.
    fn copy_bytes(
        &self,
        src: &MetalBuffer,
        src_offset: usize,
        dst: &MetalBuffer,
        dst_offset: usize,
        bytes: usize,
    ) -> Result<(), BackendError> {
        let args = [
            Arg::Buffer(src),
            Arg::Buffer(dst),
            Arg::U64(src_offset as u64),
            Arg::U64(dst_offset as u64),
            Arg::U64(bytes as u64),
        ];
        self.dispatch(name::COPY_BYTES, &args, bytes)
    }
}

/// Bind `buffer` at `index`, offset 0. The kernel's parameter at `index` is a buffer (the callers
/// follow `kernels/params.h` and the portable ops' signatures in `kernels/entry.metal`).
fn bind_buffer(
    encoder: &ProtocolObject<dyn MTLComputeCommandEncoder>,
    index: usize,
    buffer: &MetalBuffer,
) {
    // SAFETY: the buffer is retained by the command buffer (made by `commandBuffer`, which
    // retains its resources) until the GPU is done with it; offset 0 is in range; `index` is
    // below 31 (Metal's buffer argument table: callers bind at most 8 buffers, at 0..8); the
    // kernels index it within the lengths their parameters give, checked by the caller;
    // ordering against other streams' use is the caller's, per the `Stream` contract.
    unsafe { encoder.setBuffer_offset_atIndex(Some(buffer.raw()), 0, index) }
}

/// Bind a copy of `bytes` at `index` (`setBytes`); nothing when empty.
fn bind_bytes(encoder: &ProtocolObject<dyn MTLComputeCommandEncoder>, index: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let data = NonNull::from(bytes).cast::<std::ffi::c_void>();
    // SAFETY: `data` points to `bytes.len()` (1 to 4096, checked by the callers) readable bytes
    // for the whole call, and Metal copies them during it (it keeps no pointer); `index` is at
    // most 8, inside the buffer argument table.
    unsafe { encoder.setBytes_length_atIndex(data, bytes.len(), index) }
}

impl Stream<MetalBackend> for MetalStream {
    fn slot(&self) -> usize {
        self.slot
    }

    fn record(&self, event: &MetalEvent) -> Result<(), BackendError> {
        let stamp = match event.timing() {
            // Give the signalling buffer GPU work, so that Metal reports its GPUEndTime.
            Timing::Enabled => {
                Some(self.shared.kernels.pipeline(&self.shared.device, name::STAMP)?)
            }
            Timing::Disabled => None,
        };
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads.
        autoreleasepool(|_| {
            let (permit, mut commands) =
                self.enter(|| stamp.as_ref().map(|_| self.shared.encoders.acquire()));
            if let (Some(stamp), Some(permit)) = (&stamp, &permit) {
                commands.encode_kernel(&self.queue, permit, |encoder| {
                    encoder.setComputePipelineState(stamp);
                    let one = MTLSize { width: 1, height: 1, depth: 1 };
                    encoder.dispatchThreadgroups_threadsPerThreadgroup(one, one);
                })?;
            }
            drop(permit);
            // Open the buffer before taking the event's lock, so that lock is held only for
            // the signal and the commit (`query` on the event never waits behind more).
            commands.open_buffer(&self.queue)?;
            event.record_with(self.slot, |value| {
                // MPS lesson: record on the stream given: the signal goes on THIS stream's
                // buffer, after all the work encoded before it; committing makes it reach the
                // GPU (a wait on another queue would otherwise wait for a buffer nobody
                // commits).
                commands.open_buffer(&self.queue)?.encodeSignalEvent_value(event.as_event(), value);
                commands.commit(&self.tracker).ok_or_else(|| {
                    error::internal("record", "no command buffer to commit after the signal")
                })
            })?;
            drop(commands);
            self.tracker.failures.take_own(self.slot)
        })
    }

    fn wait_event(&self, event: &MetalEvent) -> Result<(), BackendError> {
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads.
        autoreleasepool(|_| {
            let ((), mut commands) = self.enter(|| ());
            // Read under the stream lock (the event's lock comes second): the value of the last
            // record made before this call. Its signal is already committed (record commits), so
            // this wait cannot wait for a buffer that is never submitted.
            let value = event.last_value();
            if value == 0 {
                return Ok(()); // never recorded: nothing to order after
            }
            // MPS lesson: wait on the stream given: its later work waits, other streams do not.
            commands.open_buffer(&self.queue)?.encodeWaitForEvent_value(event.as_event(), value);
            drop(commands);
            self.tracker.failures.take_own(self.slot)
        })
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        // Commit what is encoded and read the count under the lock; wait without it, so the
        // owner keeps submitting meanwhile. Every buffer committed before the call has a
        // number up to `last`, so all work submitted before the call is waited for.
        // MPS lesson: synchronize covers every submitter of this stream, and the device-wide
        // synchronize (core's `Device::synchronize`) calls this on every stream.
        let last = autoreleasepool(|_| {
            let mut commands = self.lock();
            commands.commit(&self.tracker);
            commands.committed()
        });
        // MPS lesson: never block under the stream's lock.
        self.tracker.wait_completed(last);
        self.tracker.failures.check(self.slot)
    }

    fn write(&self, dst: &MetalBuffer, offset: usize, src: &[u8]) -> Result<(), BackendError> {
        dst.check_range("write", offset, src.len())?;
        if src.is_empty() {
            return Ok(());
        }
        // Staged: the bytes are copied into a new buffer now, and onto `dst` in stream order.
        let staging = MetalBuffer::with_bytes(&self.shared.device, src)?;
        self.copy_bytes(&staging, 0, dst, offset, src.len())
    }

    fn read(&self, src: &MetalBuffer, offset: usize, dst: &mut [u8]) -> Result<(), BackendError> {
        src.check_range("read", offset, dst.len())?;
        self.synchronize()?;
        src.copy_out(offset, dst);
        Ok(())
    }

    fn fill_u32(&self, dst: &MetalBuffer, value: u32) -> Result<(), BackendError> {
        let words = dst.len() / size_of::<u32>();
        if words == 0 {
            return Ok(());
        }
        let args = [Arg::Buffer(dst), Arg::U64(words as u64), Arg::U32(value)];
        self.dispatch(name::FILL_U32, &args, words)
    }

    fn mul_add_u32(&self, buf: &MetalBuffer, mul: u32, add: u32) -> Result<(), BackendError> {
        let words = buf.len() / size_of::<u32>();
        if words == 0 {
            return Ok(());
        }
        let args = [Arg::Buffer(buf), Arg::U64(words as u64), Arg::U32(mul), Arg::U32(add)];
        self.dispatch(name::MUL_ADD_U32, &args, words)
    }

    fn copy(&self, src: &MetalBuffer, dst: &MetalBuffer) -> Result<(), BackendError> {
        if src.len() != dst.len() {
            return Err(BackendError::InvalidArgument(format!(
                "copy: source has {} bytes, destination {}",
                src.len(),
                dst.len()
            )));
        }
        if src.is_empty() || src.same_as(dst) {
            return Ok(());
        }
        self.copy_bytes(src, 0, dst, 0, src.len())
    }

    fn hold(&self, duration: Duration) -> Result<(), BackendError> {
        if duration.is_zero() {
            return Ok(());
        }
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads.
        autoreleasepool(|_| {
            let ((), mut commands) = self.enter(|| ());
            self.gate.hold(&mut commands, &self.queue, duration)?;
            drop(commands);
            self.tracker.failures.take_own(self.slot)
        })
    }
}

impl Drop for MetalStream {
    fn drop(&mut self) {
        // Work submitted to the stream still runs, as on the other backends: commit it, and let
        // the completion thread finish (and release) what is in flight, then exit.
        autoreleasepool(|_| {
            let commands = self.commands.get_mut().unwrap_or_else(|p| p.into_inner());
            commands.commit(&self.tracker);
        });
        self.tracker.close();
    }
}

impl std::fmt::Debug for MetalStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetalStream").field("slot", &self.slot).finish_non_exhaustive()
    }
}
