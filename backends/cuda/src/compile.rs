//! NVRTC: CUDA C source → CUBIN for one real architecture (`--gpu-architecture=sm_XX`), so the
//! driver loads machine code and has nothing left to JIT.

use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use cudarc::nvrtc::{result, sys};
use streampool_core::BackendError;

use crate::error::{self, panic_text, unavailable};

/// Options every kernel is compiled with, besides the architecture. Part of the disk-cache key.
pub(crate) const OPTIONS: &[&str] = &["--std=c++17"];

/// Compile `source` (named `name` in diagnostics) to a CUBIN for `arch` (e.g. `sm_90`).
pub(crate) fn to_cubin(name: &str, source: &str, arch: &str) -> Result<Vec<u8>, BackendError> {
    // SAFETY: only tries to dlopen the candidate names of libnvrtc.
    let present = catch_unwind(|| unsafe { sys::is_culib_present() }).unwrap_or(false);
    if !present {
        return Err(unavailable(
            "NVRTC (libnvrtc.so) was not found: it compiles the kernels; install the CUDA \
             toolkit's runtime libraries or add their folder to LD_LIBRARY_PATH",
        ));
    }
    // cudarc panics on a symbol missing from an old libnvrtc.
    catch_unwind(AssertUnwindSafe(|| compile(name, source, arch)))
        .unwrap_or_else(|p| Err(error::library("nvrtc", panic_text(&*p))))
}

/// An NVRTC program, destroyed on drop.
struct Program {
    prog: sys::nvrtcProgram,
    // The program may refer to these until it is destroyed.
    _source: CString,
    _name: CString,
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: `prog` came from create_program and is destroyed only here.
        let _ = unsafe { result::destroy_program(self.prog) };
    }
}

fn compile(name: &str, source: &str, arch: &str) -> Result<Vec<u8>, BackendError> {
    let nul = |_| BackendError::InvalidArgument(format!("kernel {name}: NUL byte in source"));
    let c_source = CString::new(source).map_err(nul)?;
    let c_name = CString::new(name).map_err(nul)?;
    let prog = result::create_program(&c_source, Some(&c_name))
        .map_err(|e| error::library("nvrtcCreateProgram", format!("{e:?}")))?;
    let program = Program { prog, _source: c_source, _name: c_name };

    let mut options = vec![format!("--gpu-architecture={arch}")];
    options.extend(OPTIONS.iter().map(|o| o.to_string()));
    // SAFETY: `program.prog` is a live program (destroyed only when `program` drops).
    if let Err(e) = unsafe { result::compile_program(program.prog, &options) } {
        // SAFETY: as above.
        let log = unsafe { result::get_program_log(program.prog) }
            .map(|raw| {
                let bytes: Vec<u8> = raw.iter().map(|&c| c as u8).collect();
                CStr::from_bytes_until_nul(&bytes)
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        return Err(error::library(
            "nvrtcCompileProgram",
            format!("kernel {name} for {arch} ({options:?}): {e:?}\n{log}"),
        ));
    }

    let mut size = 0usize;
    // SAFETY: live, compiled program; `size` is a valid out-pointer.
    unsafe { sys::nvrtcGetCUBINSize(program.prog, &mut size) }
        .result()
        .map_err(|e| error::library("nvrtcGetCUBINSize", format!("{e:?}")))?;
    if size == 0 {
        return Err(error::library(
            "nvrtcGetCUBIN",
            format!("NVRTC produced no CUBIN for {arch} (is it a real architecture?)"),
        ));
    }
    let mut cubin = vec![0u8; size];
    // SAFETY: live, compiled program; `cubin` has the `size` bytes NVRTC asked for.
    unsafe { sys::nvrtcGetCUBIN(program.prog, cubin.as_mut_ptr().cast()) }
        .result()
        .map_err(|e| error::library("nvrtcGetCUBIN", format!("{e:?}")))?;
    Ok(cubin)
}
