//! # streampool-metal-host
//!
//! The Metal backend's kernels (`backends/metal/kernels/`) compiled as C++17 and run on the host
//! CPU, as a backend: [`MslHostBackend`] implements [`Ops`](streampool_tensor::Ops) with the very
//! op → launch map the Metal backend uses ([`streampool_tensor::msl`]), and runs each launch by
//! executing the kernel's threadgroups one after the other, each phase (the code between two
//! barriers) for all of a group's threads before the next (`kernels/host.cpp`). So the ops
//! conformance suite and the MiniLM fixture run through the kernels' arithmetic on any machine,
//! CI included.
//!
//! What this proves: the kernels' indexing, tiling, reductions, masking, activations and f16
//! rounding, the parameter blocks and grids the op map builds, and the layout of those blocks.
//! What it does not: anything of the Metal API (buffer binding, encoders, command buffers,
//! events), that a Metal compiler accepts the source, or how the GPU schedules threads beyond
//! what the barriers guarantee. Streams, events and buffers are the CPU backend's.
//!
//! ```
//! use streampool_core::{Device, PoolConfig};
//! use streampool_metal_host::MslHostBackend;
//! use streampool_tensor::{DType, Ops, Tensor};
//!
//! let device = Device::new(MslHostBackend::new(), PoolConfig::with_capacity(1));
//! let lease = device.acquire()?;
//! let s = lease.stream();
//! let x = Tensor::from_host(&device, s, &[3.0, 4.0], &[1, 2])?;
//! let y = Tensor::empty(&device, &[1, 2], DType::F32)?;
//! MslHostBackend::l2_normalize(s, &x, &y)?;
//! assert_eq!(y.to_host(s)?, vec![0.6, 0.8]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

use std::ffi::{c_char, c_int, c_void, CString};
use std::time::Duration;

use streampool_core::{Backend, BackendError, Stream, Timing};
use streampool_cpu::{CpuBackend, CpuBuffer, CpuEvent, CpuStream};
use streampool_tensor::msl::{Launch, MslKernels};
use streampool_tensor::OpError;

mod ffi {
    use super::{c_char, c_int, c_void};

    extern "C" {
        /// kernels/host.cpp: run `kernel` over `groups` threadgroups of `threads` threads.
        pub(crate) fn sp_host_launch(
            kernel: *const c_char,
            groups: u32,
            threads: u32,
            buffers: *const *mut c_void,
            nbuffers: u32,
            params: *const c_void,
            params_size: u32,
        ) -> c_int;

        /// kernels/host.cpp: the size of `kernel`'s parameter block (0: unknown kernel).
        pub(crate) fn sp_host_params_size(kernel: *const c_char) -> u32;
    }
}

/// The MSL kernels on the host CPU, over the CPU backend's streams, events and buffers.
#[derive(Debug, Clone, Default)]
pub struct MslHostBackend {
    cpu: CpuBackend,
}

impl MslHostBackend {
    /// The backend (always available).
    pub fn new() -> Self {
        Self::default()
    }
}

/// Stream of [`MslHostBackend`]: a CPU stream whose work items run kernels.
#[derive(Debug)]
pub struct MslHostStream(CpuStream);

impl Backend for MslHostBackend {
    type Stream = MslHostStream;
    type Event = CpuEvent;
    type Buffer = CpuBuffer;

    fn kind(&self) -> &'static str {
        "msl-host"
    }

    fn name(&self) -> String {
        "Metal kernels on the host CPU".into()
    }

    fn new_stream(&self, slot: usize) -> Result<MslHostStream, BackendError> {
        self.cpu.new_stream(slot).map(MslHostStream)
    }

    fn new_event(&self, timing: Timing) -> Result<CpuEvent, BackendError> {
        self.cpu.new_event(timing)
    }

    fn alloc(&self, bytes: usize) -> Result<CpuBuffer, BackendError> {
        self.cpu.alloc(bytes)
    }

    fn buffer_len(buffer: &CpuBuffer) -> usize {
        buffer.len()
    }
}

/// Every call is the CPU stream's.
impl Stream<MslHostBackend> for MslHostStream {
    fn slot(&self) -> usize {
        self.0.slot()
    }

    fn record(&self, event: &CpuEvent) -> Result<(), BackendError> {
        Stream::<CpuBackend>::record(&self.0, event)
    }

    fn wait_event(&self, event: &CpuEvent) -> Result<(), BackendError> {
        Stream::<CpuBackend>::wait_event(&self.0, event)
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        Stream::<CpuBackend>::synchronize(&self.0)
    }

    fn write(&self, dst: &CpuBuffer, offset: usize, src: &[u8]) -> Result<(), BackendError> {
        self.0.write(dst, offset, src)
    }

    fn read(&self, src: &CpuBuffer, offset: usize, dst: &mut [u8]) -> Result<(), BackendError> {
        self.0.read(src, offset, dst)
    }

    fn fill_u32(&self, dst: &CpuBuffer, value: u32) -> Result<(), BackendError> {
        self.0.fill_u32(dst, value)
    }

    fn mul_add_u32(&self, buf: &CpuBuffer, mul: u32, add: u32) -> Result<(), BackendError> {
        self.0.mul_add_u32(buf, mul, add)
    }

    fn copy(&self, src: &CpuBuffer, dst: &CpuBuffer) -> Result<(), BackendError> {
        Stream::<CpuBackend>::copy(&self.0, src, dst)
    }

    fn hold(&self, duration: Duration) -> Result<(), BackendError> {
        self.0.hold(duration)
    }
}

impl MslKernels for MslHostBackend {
    fn launch(stream: &MslHostStream, l: Launch<'_, Self>) -> Result<(), OpError> {
        let invalid = |what: String| OpError::Backend(BackendError::InvalidArgument(what));
        let kernel = CString::new(l.kernel).map_err(|e| invalid(e.to_string()))?;
        let groups = u32::try_from(l.groups).map_err(|e| invalid(e.to_string()))?;
        let threads = u32::try_from(l.threads).map_err(|e| invalid(e.to_string()))?;
        let buffers: Vec<CpuBuffer> = l.buffers.iter().map(|&b| b.clone()).collect();
        let params = l.params.to_vec();
        let job = move || run(&kernel, [groups, threads], &buffers, &params);
        Ok(stream.0.enqueue(job)?)
    }

    fn stream_alloc(_: &MslHostStream, bytes: usize) -> Result<CpuBuffer, OpError> {
        Ok(CpuBuffer::zeroed(bytes))
    }

    fn same_buffer(a: &CpuBuffer, b: &CpuBuffer) -> bool {
        a.same_as(b)
    }
}

streampool_tensor::impl_msl_ops!(MslHostBackend);

/// One launch, as a work item of the stream: the output (the last buffer) locked for writing,
/// the other distinct buffers for reading (inputs first, as the CPU backend's ops), then the
/// kernel on their addresses. An input in the output's buffer (an in-place op, or an absent
/// optional operand bound to the output) gets the output's address.
fn run(
    kernel: &CString,
    [groups, threads]: [u32; 2],
    buffers: &[CpuBuffer],
    params: &[u8],
) -> Result<(), String> {
    let (out, inputs) = buffers.split_last().ok_or("a launch without buffers")?;
    let mut reads = Vec::new();
    for b in inputs {
        if !b.same_as(out) && !reads.iter().any(|(h, _): &(&CpuBuffer, _)| h.same_as(b)) {
            reads.push((b, b.read()));
        }
    }
    let mut write = out.write();
    let out_ptr = write.as_bytes_mut().as_mut_ptr().cast::<c_void>();
    let mut pointers: Vec<*mut c_void> = Vec::with_capacity(buffers.len());
    for b in inputs {
        let ptr = match reads.iter().find(|(h, _)| h.same_as(b)) {
            // The kernels never write through an input's address.
            Some((_, guard)) => guard.as_bytes().as_ptr().cast_mut().cast::<c_void>(),
            None => out_ptr,
        };
        pointers.push(ptr);
    }
    pointers.push(out_ptr);
    let count = u32::try_from(pointers.len()).map_err(|e| e.to_string())?;
    let size = u32::try_from(params.len()).map_err(|e| e.to_string())?;
    // SAFETY: `kernel` is a NUL-terminated string; `pointers` holds `count` addresses of
    // buffers locked for the whole call (the output's for writing), each covering every element
    // the launch's views reach (the op map checked the views against their buffers); the kernels
    // write only through the last one; `params` points to `size` readable bytes. The C++ side
    // keeps no pointer after returning.
    let code = unsafe {
        ffi::sp_host_launch(
            kernel.as_ptr(),
            groups,
            threads,
            pointers.as_ptr(),
            count,
            params.as_ptr().cast(),
            size,
        )
    };
    drop(write);
    match code {
        0 => Ok(()),
        1 => Err(format!("{kernel:?}: no such kernel")),
        2 => Err(format!("{kernel:?}: parameter block of {size} bytes has the wrong size")),
        3 => Err(format!("{kernel:?}: {count} buffers is the wrong count")),
        4 => Err(format!("{kernel:?}: {threads} threads per threadgroup not allowed")),
        other => Err(format!("{kernel:?}: host launcher failed with code {other}")),
    }
}

/// The size of the C++ parameter block of entry point `kernel` (`None`: unknown kernel).
pub fn params_size(kernel: &str) -> Option<usize> {
    let name = CString::new(kernel).ok()?;
    // SAFETY: `name` is a NUL-terminated string the C++ side only reads during the call.
    let size = unsafe { ffi::sp_host_params_size(name.as_ptr()) };
    (size != 0).then_some(size as usize)
}
