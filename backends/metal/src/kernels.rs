//! The portable ops' compute pipelines: one Metal Shading Language library (`kernels.metal`)
//! compiled at first use (`newLibraryWithSource:options:error:`), and one pipeline per kernel
//! (`newComputePipelineStateWithFunction:error:`), each through the core's [`CompileCache`]:
//! one compile per key however many threads miss it at once, and hits that take no lock.
//! Unlike PyTorch MPS's unlocked shader cache, two streams can never race on an entry.

use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_foundation::NSString;
use objc2_metal::{MTLComputePipelineState, MTLDevice, MTLLibrary};
use streampool_core::{BackendError, CacheError, CompileCache};

use crate::error::{self, BACKEND};

/// The kernels' source.
const SOURCE: &str = include_str!("kernels.metal");

/// A compiled kernel (`Send + Sync` in objc2-metal: pipeline states are immutable).
pub(crate) type Pipeline = Retained<ProtocolObject<dyn MTLComputePipelineState>>;
type Library = Retained<ProtocolObject<dyn MTLLibrary>>;

/// The names of the kernels in `kernels.metal`.
pub(crate) mod name {
    pub(crate) const FILL_U32: &str = "fill_u32";
    pub(crate) const MUL_ADD_U32: &str = "mul_add_u32";
    pub(crate) const COPY_BYTES: &str = "copy_bytes";
    pub(crate) const STAMP: &str = "stamp";
}

/// The compiled library and pipelines of one device.
#[derive(Default)]
pub(crate) struct Kernels {
    /// The one library (key `()`): compiled once, by the first pipeline miss.
    library: CompileCache<(), Library, BackendError>,
    /// Kernel name → pipeline.
    pipelines: CompileCache<&'static str, Pipeline, BackendError>,
}

impl Kernels {
    /// The pipeline of kernel `name`, compiling the library and the pipeline if needed.
    pub(crate) fn pipeline(
        &self,
        device: &ProtocolObject<dyn MTLDevice>,
        name: &'static str,
    ) -> Result<Pipeline, BackendError> {
        self.pipelines
            .get(&name, || {
                let library = self.library.get(&(), || compile_library(device)).map_err(flatten)?;
                let function = library
                    .newFunctionWithName(&NSString::from_str(name))
                    .ok_or_else(|| error::nil("newFunctionWithName"))?;
                device
                    .newComputePipelineStateWithFunction_error(&function)
                    .map_err(error::ns_error("newComputePipelineStateWithFunction"))
            })
            .map_err(flatten)
    }

    /// Compiles started (library and pipelines).
    pub(crate) fn compiles(&self) -> u64 {
        self.library.compiles() + self.pipelines.compiles()
    }
}

fn compile_library(device: &ProtocolObject<dyn MTLDevice>) -> Result<Library, BackendError> {
    device
        .newLibraryWithSource_options_error(&NSString::from_str(SOURCE), None)
        .map_err(error::ns_error("newLibraryWithSource"))
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
