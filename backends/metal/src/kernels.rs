//! The kernels' compute pipelines: one Metal Shading Language library (the files of
//! `backends/metal/kernels/`, concatenated) compiled at first use
//! (`newLibraryWithSource:options:error:`, fast math off, MSL 2.4), and one pipeline per kernel
//! (`newComputePipelineStateWithFunction:error:`), each through the core's [`CompileCache`]:
//! one compile per key however many threads miss it at once, and hits that take no lock.

use objc2::rc::{autoreleasepool, Retained};
use objc2::runtime::ProtocolObject;
use objc2_foundation::NSString;
use objc2_metal::{
    MTLCompileOptions, MTLComputePipelineState, MTLDevice, MTLLanguageVersion, MTLLibrary,
    MTLMathFloatingPointFunctions, MTLMathMode,
};
use streampool_core::{BackendError, CacheError, CompileCache};

use crate::error::{self, BACKEND};
use crate::os::OsVersion;

/// The kernels' source: the dialect, the parameter blocks, the op bodies and the entry points
/// (the portable ops' four kernels at the end of `entry.metal`), one translation unit. Compiled
/// from source, so the files cannot `#include` each other: they are concatenated in this order
/// (a newline between, in case a file does not end with one).
const SOURCE: &str = concat!(
    include_str!("../kernels/dialect.h"),
    "\n",
    include_str!("../kernels/params.h"),
    "\n",
    include_str!("../kernels/ops.h"),
    "\n",
    include_str!("../kernels/entry.metal"),
    "\n",
);

/// A compiled kernel (`Send + Sync` in objc2-metal: pipeline states are immutable).
pub(crate) type Pipeline = Retained<ProtocolObject<dyn MTLComputePipelineState>>;
type Library = Retained<ProtocolObject<dyn MTLLibrary>>;

/// The names of the portable ops' kernels in `entry.metal`.
pub(crate) mod name {
    pub(crate) const FILL_U32: &str = "fill_u32";
    pub(crate) const MUL_ADD_U32: &str = "mul_add_u32";
    pub(crate) const COPY_BYTES: &str = "copy_bytes";
    pub(crate) const STAMP: &str = "stamp";
}

/// The compiled library and pipelines of one device.
pub(crate) struct Kernels {
    /// The system's version: which compile options API to use.
    os: OsVersion,
    /// The one library (key `()`): compiled once, by the first pipeline miss.
    library: CompileCache<(), Library, BackendError>,
    /// Kernel name → pipeline.
    pipelines: CompileCache<&'static str, Pipeline, BackendError>,
}

impl Kernels {
    pub(crate) fn new(os: OsVersion) -> Self {
        Self { os, library: CompileCache::new(), pipelines: CompileCache::new() }
    }

    /// The pipeline of kernel `name`, compiling the library and the pipeline if needed. A name
    /// the library lacks is [`BackendError::InvalidArgument`].
    // MPS lesson: the shader cache was raced by threads compiling at once; here one compile per
    // key, hits without a lock.
    pub(crate) fn pipeline(
        &self,
        device: &ProtocolObject<dyn MTLDevice>,
        name: &'static str,
    ) -> Result<Pipeline, BackendError> {
        self.pipelines
            .get(&name, || {
                let library =
                    self.library.get(&(), || compile_library(device, self.os)).map_err(flatten)?;
                // MPS lesson: an autorelease pool around every Objective-C call path on worker
                // threads (the compile's error is autoreleased).
                autoreleasepool(|_| {
                    let function = library
                        .newFunctionWithName(&NSString::from_str(name))
                        .ok_or_else(|| {
                            BackendError::InvalidArgument(format!(
                                "no kernel named `{name}` in the Metal library"
                            ))
                        })?;
                    device
                        .newComputePipelineStateWithFunction_error(&function)
                        .map_err(error::ns_error("newComputePipelineStateWithFunction"))
                })
            })
            .map_err(flatten)
    }

    /// Compiles started (library and pipelines).
    pub(crate) fn compiles(&self) -> u64 {
        self.library.compiles() + self.pipelines.compiles()
    }
}

/// The options of the library's compile: fast math off, MSL 2.4.
fn compile_options(os: OsVersion) -> Retained<MTLCompileOptions> {
    let options = MTLCompileOptions::new();
    // The GEMM uses simdgroup matrices (MSL 2.3); 2.4 is what macOS 12, our floor, offers.
    options.setLanguageVersion(MTLLanguageVersion::Version2_4);
    // The kernels' precision is tested against f32 references: no fast math. `mathMode` and
    // `mathFloatingPointFunctions` replace `fastMathEnabled` from macOS 15 on; before, only the
    // deprecated property exists.
    if os.at_least(15, 0) {
        // Safe: no optimisation that breaks IEEE 754; Precise: `metal::precise` math
        // functions by default, which is what `fastMathEnabled = NO` gave.
        options.setMathMode(MTLMathMode::Safe);
        options.setMathFloatingPointFunctions(MTLMathFloatingPointFunctions::Precise);
    } else {
        #[allow(
            deprecated,
            reason = "macOS 12 to 14 have only `fastMathEnabled`; `mathMode` is used from 15 on"
        )]
        options.setFastMathEnabled(false);
    }
    options
}

fn compile_library(
    device: &ProtocolObject<dyn MTLDevice>,
    os: OsVersion,
) -> Result<Library, BackendError> {
    // MPS lesson: an autorelease pool around every Objective-C call path on worker threads
    // (the compiler's error and its description are autoreleased).
    autoreleasepool(|_| {
        let options = compile_options(os);
        device
            .newLibraryWithSource_options_error(&NSString::from_str(SOURCE), Some(&options))
            .map_err(error::ns_error("newLibraryWithSource"))
    })
}

/// The cache's error as the backend's.
fn flatten(e: CacheError<BackendError>) -> BackendError {
    match e {
        CacheError::Failed(e) => (*e).clone(),
        other => BackendError::Driver {
            backend: BACKEND,
            call: "compile kernels",
            message: other.to_string(),
        },
    }
}
