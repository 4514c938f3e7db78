//! The kernels of the portable ops, and the one place that maps a kernel to its loaded function:
//! compiled at first use through the core's [`CompileCache`] (one compile per module, lock-free
//! hits), with the on-disk cache in front of NVRTC.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cudarc::driver as cu;
use cudarc::nvrtc::Ptx;
use streampool_core::{BackendError, CacheError, CompileCache};

use crate::compile;
use crate::disk_cache::{source_hash, DiskCache, DiskKey};
use crate::error;

/// A CUDA C source file and the `extern "C"` kernels it defines.
#[derive(Debug)]
pub(crate) struct Module {
    /// Unique name; the compile-cache key.
    pub(crate) name: &'static str,
    pub(crate) source: &'static str,
    pub(crate) functions: &'static [&'static str],
}

/// `fill_u32`, `mul_add_u32`.
pub(crate) const U32_OPS: Module = Module {
    name: "u32_ops.cu",
    source: include_str!("../kernels/u32_ops.cu"),
    functions: &["fill_u32", "mul_add_u32"],
};

/// `hold_ns`.
pub(crate) const HOLD: Module =
    Module { name: "hold.cu", source: include_str!("../kernels/hold.cu"), functions: &["hold_ns"] };

/// A module loaded into the context, with its functions looked up.
pub(crate) struct Loaded {
    functions: HashMap<&'static str, cu::CudaFunction>,
}

/// The compiled kernels of one device.
pub(crate) struct Kernels {
    arch: String,
    driver_version: i32,
    loaded: CompileCache<&'static str, Loaded, BackendError>,
    disk: DiskCache,
    /// NVRTC compiles run (Relaxed: statistics).
    nvrtc_compiles: AtomicU64,
}

impl Kernels {
    pub(crate) fn new(arch: String, driver_version: i32, disk_dir: Option<PathBuf>) -> Self {
        Self {
            arch,
            driver_version,
            loaded: CompileCache::new(),
            disk: DiskCache::new(disk_dir),
            nvrtc_compiles: AtomicU64::new(0),
        }
    }

    pub(crate) fn arch(&self) -> &str {
        &self.arch
    }

    pub(crate) fn nvrtc_compiles(&self) -> u64 {
        self.nvrtc_compiles.load(Ordering::Relaxed)
    }

    pub(crate) fn disk_hits(&self) -> u64 {
        self.disk.hits()
    }

    /// Call `f` with kernel `function` of `module`, loading (and if need be compiling) the module
    /// the first time. A hit takes no lock.
    pub(crate) fn with<R>(
        &self,
        ctx: &Arc<cu::CudaContext>,
        module: &Module,
        function: &str,
        f: impl FnOnce(&cu::CudaFunction) -> Result<R, BackendError>,
    ) -> Result<R, BackendError> {
        let found = self.loaded.get_with(
            &module.name,
            || self.load(ctx, module),
            |loaded| match loaded.functions.get(function) {
                Some(func) => f(func),
                None => Err(BackendError::InvalidArgument(format!(
                    "no kernel {function} in {}",
                    module.name
                ))),
            },
        );
        match found {
            Ok(result) => result,
            Err(CacheError::Failed(e)) => Err((*e).clone()),
            Err(CacheError::Panicked(message)) => Err(error::library("kernel compile", message)),
            Err(e) => Err(error::library("kernel compile", e.to_string())),
        }
    }

    /// Load `module` from the disk cache, or compile it with NVRTC and store it there.
    fn load(&self, ctx: &Arc<cu::CudaContext>, module: &Module) -> Result<Loaded, BackendError> {
        let mut parts = vec![module.source];
        parts.extend_from_slice(compile::OPTIONS);
        let key = DiskKey {
            source_hash: source_hash(&parts),
            arch: self.arch.clone(),
            driver_version: self.driver_version,
        };
        if let Some(cubin) = self.disk.load(&key) {
            match Self::load_cubin(ctx, module, cubin) {
                Ok(loaded) => return Ok(loaded),
                // A damaged entry: forget it and compile afresh.
                Err(_) => self.disk.remove(&key),
            }
        }
        self.nvrtc_compiles.fetch_add(1, Ordering::Relaxed);
        let cubin = compile::to_cubin(module.name, module.source, &self.arch)?;
        self.disk.store(&key, &cubin);
        Self::load_cubin(ctx, module, cubin)
    }

    fn load_cubin(
        ctx: &Arc<cu::CudaContext>,
        module: &Module,
        cubin: Vec<u8>,
    ) -> Result<Loaded, BackendError> {
        let loaded =
            ctx.load_module(Ptx::from_binary(cubin)).map_err(error::driver("cuModuleLoadData"))?;
        let mut functions = HashMap::new();
        for &name in module.functions {
            let func = loaded.load_function(name).map_err(error::driver("cuModuleGetFunction"))?;
            functions.insert(name, func);
        }
        Ok(Loaded { functions })
    }
}
