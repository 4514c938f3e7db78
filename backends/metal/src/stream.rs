//! A pool slot's stream: its own `MTLCommandQueue`, and the command buffer and compute encoder
//! being encoded, behind this stream's own lock. The portable ops are compute dispatches of the
//! kernels in `kernels.metal`.
//!
//! What PyTorch's MPS backend got wrong, and how this avoids it:
//! - command buffers and encoders created lazily per stream without a lock: here they live in
//!   [`Commands`], reachable only through `MetalStream::commands`, this stream's mutex;
//! - a device synchronize that waited only for the caller's stream: `Device::synchronize` (core)
//!   calls [`Stream::synchronize`] on every stream, and this one commits and waits for every
//!   buffer committed before the call, whichever thread asks;
//! - event record/wait that ignored the stream argument: `record` signals on *this* stream's
//!   command buffer, `wait_event` waits on *this* stream's.

use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_foundation::NSString;
use objc2_metal::{
    MTLCommandBuffer, MTLCommandQueue, MTLComputeCommandEncoder, MTLComputePipelineState,
    MTLDevice, MTLSize,
};
use streampool_core::{BackendError, Event, Stream, Timing};

use crate::backend::{MetalBackend, Shared};
use crate::buffer::MetalBuffer;
use crate::commands::Commands;
use crate::error;
use crate::event::MetalEvent;
use crate::hold::Gate;
use crate::kernels::name;

/// Threads per threadgroup of the element-wise kernels (at most; the pipeline may allow fewer).
const GROUP: usize = 256;
/// Threadgroups per dispatch, at most: the kernels loop over the rest (grid-stride).
const MAX_GROUPS: usize = 1024;

/// A kernel argument, bound at the index of its position.
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
    /// This stream's own lock; no other lock of the backend is held while waiting for it. It
    /// guards the command buffer being encoded and its compute encoder (created lazily by the
    /// first op after a commit; ended and committed by `synchronize`, `record`, or once a buffer
    /// holds 64 dispatches), the committed buffers not yet seen complete, the first failure not
    /// yet reported, and the hold gate's value. Taken by every submitter (the owner, or threads
    /// it shares the stream with) for the whole of each op, so ops from several threads are
    /// encoded one after the other, each whole; and by any thread in `synchronize` only to
    /// commit and to copy the list of buffers: the wait itself runs without it. Kernel compiles
    /// happen before it is taken. When an event's lock is also needed (`record`, `wait_event`),
    /// it is taken after this one.
    commands: Mutex<Commands>,
    gate: Gate,
}

impl MetalStream {
    pub(crate) fn new(shared: &Arc<Shared>, slot: usize) -> Result<Self, BackendError> {
        let queue = shared.device.newCommandQueue().ok_or_else(|| error::nil("newCommandQueue"))?;
        // Named for Xcode's GPU captures and Metal's error messages.
        queue.setLabel(Some(&NSString::from_str(&format!("streampool slot {slot}"))));
        let gate = Gate::new(&shared.device)?;
        Ok(Self {
            slot,
            queue,
            shared: shared.clone(),
            commands: Mutex::new(Commands::new()),
            gate,
        })
    }

    /// The command queue (for code that needs the raw API). Work submitted to it directly is
    /// not ordered with the work this type encodes until that is committed (`synchronize`).
    pub fn queue(&self) -> &ProtocolObject<dyn MTLCommandQueue> {
        &self.queue
    }

    fn lock(&self) -> MutexGuard<'_, Commands> {
        // Poisoned: an op panicked mid-encoding. The handles are still valid; the worst case is
        // an op half encoded, which a later commit still submits.
        self.commands.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Encode `kernel` over `items` work items with `args` bound at indices 0, 1, ...; reports
    /// a failure of earlier work, if any (the op is encoded all the same).
    fn dispatch(
        &self,
        kernel: &'static str,
        args: &[Arg<'_>],
        items: usize,
    ) -> Result<(), BackendError> {
        let pipeline = self.shared.kernels.pipeline(&self.shared.device, kernel)?;
        let width = pipeline.maxTotalThreadsPerThreadgroup().clamp(1, GROUP);
        let groups = items.div_ceil(width).clamp(1, MAX_GROUPS);
        let mut commands = self.lock();
        let earlier = commands.take_failure(self.slot);
        let encoder = commands.encoder(&self.queue)?;
        encoder.setComputePipelineState(&pipeline);
        for (index, arg) in args.iter().enumerate() {
            bind(encoder, index, arg);
        }
        encoder.dispatchThreadgroups_threadsPerThreadgroup(
            MTLSize { width: groups, height: 1, depth: 1 },
            MTLSize { width, height: 1, depth: 1 },
        );
        commands.dispatched();
        earlier
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

/// Bind one argument. The buffer and the bytes match the kernel's parameter at `index` (the
/// callers follow `kernels.metal`).
fn bind(encoder: &ProtocolObject<dyn MTLComputeCommandEncoder>, index: usize, arg: &Arg<'_>) {
    match arg {
        // SAFETY: the buffer is retained by the command buffer (created with retained
        // references) until the GPU is done with it; offset 0 is in range; the kernels index it
        // within the length the caller checked; ordering against other streams' use is the
        // caller's, per the `Stream` contract.
        Arg::Buffer(buffer) => unsafe {
            encoder.setBuffer_offset_atIndex(Some(buffer.raw()), 0, index)
        },
        // SAFETY: the pointer is to a live u32 of exactly the length given; Metal copies the
        // bytes during the call.
        Arg::U32(value) => unsafe {
            encoder.setBytes_length_atIndex(NonNull::from(value).cast(), size_of::<u32>(), index)
        },
        // SAFETY: as above, for a u64.
        Arg::U64(value) => unsafe {
            encoder.setBytes_length_atIndex(NonNull::from(value).cast(), size_of::<u64>(), index)
        },
    }
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
        let mut commands = self.lock();
        let earlier = commands.take_failure(self.slot);
        if let Some(stamp) = &stamp {
            let encoder = commands.encoder(&self.queue)?;
            encoder.setComputePipelineState(stamp);
            let one = MTLSize { width: 1, height: 1, depth: 1 };
            encoder.dispatchThreadgroups_threadsPerThreadgroup(one, one);
        }
        // Open the buffer before taking the event's lock: opening can block (the queue's limit
        // of uncompleted buffers), and `query` on the event must not wait behind that.
        commands.between_encoders(&self.queue)?;
        event.record_with(self.slot, |value| {
            // The signal goes on THIS stream's buffer, after all the work encoded before it;
            // committing makes it reach the GPU (a wait on another queue would otherwise wait
            // for a buffer nobody commits).
            commands
                .between_encoders(&self.queue)?
                .encodeSignalEvent_value(event.as_event(), value);
            Ok(commands.commit().expect("invariant: between_encoders opened a buffer"))
        })?;
        earlier
    }

    fn wait_event(&self, event: &MetalEvent) -> Result<(), BackendError> {
        let mut commands = self.lock();
        // Read under the stream lock (the event's lock comes second): the value of the last
        // record made before this call. Its signal is already committed (record commits), so
        // this wait cannot wait for a buffer that is never submitted.
        let value = event.last_value();
        if value == 0 {
            return Ok(()); // never recorded: nothing to order after
        }
        // The wait goes on THIS stream's buffer: its later work waits, other streams do not.
        commands.between_encoders(&self.queue)?.encodeWaitForEvent_value(event.as_event(), value);
        commands.take_failure(self.slot)
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        // Commit what is encoded, and take the list of what is in flight, under the lock; wait
        // without it, so the owner keeps submitting meanwhile. Every buffer committed before the
        // call is in the list, so all work submitted before the call is waited for.
        let pending = {
            let mut commands = self.lock();
            commands.commit();
            commands.in_flight()
        };
        for buffer in &pending {
            buffer.wait();
        }
        self.lock().check_failures(self.slot)
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
        let words = dst.len() / 4;
        if words == 0 {
            return Ok(());
        }
        let args = [Arg::Buffer(dst), Arg::U64(words as u64), Arg::U32(value)];
        self.dispatch(name::FILL_U32, &args, words)
    }

    fn mul_add_u32(&self, buf: &MetalBuffer, mul: u32, add: u32) -> Result<(), BackendError> {
        let words = buf.len() / 4;
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
        let mut commands = self.lock();
        let earlier = commands.take_failure(self.slot);
        self.gate.hold(&mut commands, &self.queue, duration)?;
        earlier
    }
}

impl std::fmt::Debug for MetalStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetalStream").field("slot", &self.slot).finish_non_exhaustive()
    }
}
