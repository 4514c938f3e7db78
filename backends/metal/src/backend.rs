//! The device: opening it (with a typed error where there is no Metal GPU), what its streams,
//! events and buffers share, and the [`Backend`] implementation.

use std::sync::Arc;

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLCreateSystemDefaultDevice, MTLDevice};
use streampool_core::{Backend, BackendError, MemoryUsage, Timing};

use crate::buffer::MetalBuffer;
use crate::error::{self, unavailable};
use crate::event::MetalEvent;
use crate::kernels::Kernels;
use crate::stream::MetalStream;

// `MTLCreateSystemDefaultDevice` returns nil in a process that has not loaded CoreGraphics
// (objc2-metal's crate docs say so): link it, as an app would.
#[link(name = "CoreGraphics", kind = "framework")]
extern "C" {}

/// The Metal device (`MTLDevice` is `Send + Sync` in objc2-metal: Apple documents the device
/// object as safe to use from any thread).
pub(crate) type Device = Retained<ProtocolObject<dyn MTLDevice>>;

/// What every stream, event and buffer of one device shares. Children hold an `Arc` of it, so
/// the device outlives everything created from it.
pub(crate) struct Shared {
    pub(crate) device: Device,
    pub(crate) name: String,
    /// The portable ops' pipelines, compiled at first use, once per process.
    pub(crate) kernels: Kernels,
}

/// The Metal backend for the system's default GPU.
///
/// Each pool slot gets its own `MTLCommandQueue` ([`MetalStream`]); nothing is shared between
/// streams but the device and the compile-once pipeline cache, whose hits take no lock.
///
/// ```no_run
/// use streampool_core::{Device, PoolConfig, Stream};
/// use streampool_metal::MetalBackend;
/// let device = Device::new(MetalBackend::open()?, PoolConfig::default());
/// let buffer = device.alloc(16)?;
/// let lease = device.acquire()?;
/// lease.stream().fill_u32(&buffer, 7)?;
/// let mut out = [0u8; 16];
/// lease.stream().read(&buffer, 0, &mut out)?;
/// assert_eq!(out[..4], 7u32.to_ne_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MetalBackend {
    shared: Arc<Shared>,
}

impl MetalBackend {
    /// Open the system's default Metal device (`MTLCreateSystemDefaultDevice`). Errors with
    /// [`BackendError::Unavailable`] when there is none (no GPU, or a virtual machine without
    /// Metal).
    pub fn open() -> Result<Self, BackendError> {
        let device = MTLCreateSystemDefaultDevice().ok_or_else(|| {
            unavailable(
                "MTLCreateSystemDefaultDevice found no Metal GPU (a virtual machine without \
                 Metal, or a Mac without a Metal-capable GPU)",
            )
        })?;
        let name = autoreleasepool(|_| device.name().to_string());
        Ok(Self { shared: Arc::new(Shared { device, name, kernels: Kernels::default() }) })
    }

    /// The Metal device (for code that needs the raw API).
    pub fn device(&self) -> &ProtocolObject<dyn MTLDevice> {
        &self.shared.device
    }

    /// Number of Metal Shading Language compiles (library and pipelines) this backend ran.
    pub fn kernel_compiles(&self) -> u64 {
        self.shared.kernels.compiles()
    }
}

impl std::fmt::Debug for MetalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetalBackend").field("name", &self.shared.name).finish()
    }
}

impl Backend for MetalBackend {
    type Stream = MetalStream;
    type Event = MetalEvent;
    type Buffer = MetalBuffer;

    fn kind(&self) -> &'static str {
        "metal"
    }

    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn new_stream(&self, slot: usize) -> Result<MetalStream, BackendError> {
        MetalStream::new(&self.shared, slot)
    }

    fn new_event(&self, timing: Timing) -> Result<MetalEvent, BackendError> {
        let event =
            self.shared.device.newSharedEvent().ok_or_else(|| error::nil("newSharedEvent"))?;
        Ok(MetalEvent::new(event, timing))
    }

    fn alloc(&self, bytes: usize) -> Result<MetalBuffer, BackendError> {
        MetalBuffer::alloc(&self.shared.device, bytes)
    }

    fn buffer_len(buffer: &MetalBuffer) -> usize {
        buffer.len()
    }

    fn memory(&self) -> Option<MemoryUsage> {
        // No caching allocator (yet): every buffer is its own `MTLBuffer`.
        Some(MemoryUsage {
            device_used: self.shared.device.currentAllocatedSize(),
            ..Default::default()
        })
    }
}
