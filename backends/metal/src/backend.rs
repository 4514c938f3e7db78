//! The device: opening it (with a typed error where there is no Metal GPU), what its streams,
//! events and buffers share, and the [`Backend`] implementation.

use std::sync::Arc;

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_metal::{MTLCreateSystemDefaultDevice, MTLDevice};
use streampool_core::{Backend, BackendError, MemoryUsage, Timing};

use crate::buffer::MetalBuffer;
use crate::encoders::EncoderGate;
use crate::error::{self, unavailable};
use crate::event::MetalEvent;
use crate::kernels::Kernels;
use crate::options::MetalOptions;
use crate::os::{OsVersion, MIN_MACOS};
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
///
/// Locks, and what each guards (taken in this order when several are held; none is held while
/// waiting for the GPU):
/// 1. `encoders` (a device-wide permit, not a mutex held while encoding by others): taken by an
///    op before it creates a compute encoder, given back after `endEncoding`; always *before*
///    the stream's lock, never while holding one;
/// 2. `MetalStream::commands`, one per stream: the command buffer being encoded and its
///    bookkeeping (stream.rs);
/// 3. `MetalEvent`'s own lock (its last record), then a stream's completion `Tracker` (brief
///    counter and queue locks, never held while waiting).
///
/// `kernels` takes no lock on a hit; its compiles run before any of the above is taken.
pub(crate) struct Shared {
    pub(crate) device: Device,
    pub(crate) name: String,
    /// The options the device was opened with.
    pub(crate) options: MetalOptions,
    /// The kernels' pipelines, compiled at first use, once per device.
    pub(crate) kernels: Kernels,
    /// The encoder permits: one with `options.serialize_encoders`, else `options.max_encoders`.
    // MPS lesson: Apple's driver crashed with 3+ threads creating encoders at once: encoder
    // creation and `endEncoding` across all streams of the device take this permit.
    pub(crate) encoders: EncoderGate,
}

/// The Metal backend for the system's default GPU.
///
/// Each pool slot gets its own `MTLCommandQueue` ([`MetalStream`]); nothing is shared between
/// streams but the device, the compile-once pipeline cache, whose hits take no lock, and the
/// encoder permits of [`MetalOptions`].
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
    /// Open the system's default Metal device (`MTLCreateSystemDefaultDevice`) with the options
    /// of the environment ([`MetalOptions::from_env`]: the defaults unless
    /// `STREAMPOOL_METAL_*` variables say otherwise). Errors with
    /// [`BackendError::Unavailable`] when there is no Metal GPU (no GPU, or a virtual machine
    /// without Metal) or the system is older than macOS 12, and
    /// [`BackendError::InvalidArgument`] for a variable that does not parse.
    pub fn open() -> Result<Self, BackendError> {
        Self::open_with(MetalOptions::from_env()?)
    }

    /// [`MetalBackend::open`] with the options given (the environment is not read).
    pub fn open_with(options: MetalOptions) -> Result<Self, BackendError> {
        options.check()?;
        let os = OsVersion::current();
        // MPS lesson: host waits on shared events need `waitUntilSignaledValue:timeoutMS:`
        // (macOS 12); refuse older systems with a reason rather than crash on first wait.
        if !os.at_least(MIN_MACOS.0, MIN_MACOS.1) {
            return Err(unavailable(format!(
                "macOS {os} is too old: the Metal backend needs macOS {}.{} or later \
                 (MTLSharedEvent's waitUntilSignaledValue:timeoutMS:)",
                MIN_MACOS.0, MIN_MACOS.1
            )));
        }
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads.
        let (device, name) = autoreleasepool(|_| {
            let device = MTLCreateSystemDefaultDevice().ok_or_else(|| {
                unavailable(
                    "MTLCreateSystemDefaultDevice found no Metal GPU (a virtual machine without \
                     Metal, or a Mac without a Metal-capable GPU)",
                )
            })?;
            let name = device.name().to_string();
            Ok::<_, BackendError>((device, name))
        })?;
        let shared = Shared {
            device,
            name,
            options,
            kernels: Kernels::new(os),
            encoders: EncoderGate::new(options.encoder_permits()),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The options the device was opened with.
    pub fn options(&self) -> MetalOptions {
        self.shared.options
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
        // MPS lesson: an autorelease pool around every Objective-C call path on worker threads.
        let event = autoreleasepool(|_| self.shared.device.newSharedEvent())
            .ok_or_else(|| error::nil("newSharedEvent"))?;
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
            device_used: autoreleasepool(|_| self.shared.device.currentAllocatedSize()),
            ..Default::default()
        })
    }
}
