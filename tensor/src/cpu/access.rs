//! Buffer access inside CPU work items: read locks on the distinct input buffers (each taken
//! once, so two views of one buffer never lock it twice), and the element range of a tensor.
//!
//! Locks are taken inputs first, then the output, for the duration of one op. Two streams that
//! write buffers the other reads at the same time, without an event between them, race as they
//! would on a GPU; here that can block both workers, so order such work with events.

use std::ops::Range;
use std::sync::OnceLock;

use streampool_cpu::kernels::{KernelError, Parallelism};
use streampool_cpu::{BufferRead, CpuBackend, CpuBuffer};

use crate::Tensor;

/// A CPU tensor.
pub(super) type CpuTensor = Tensor<CpuBackend>;

/// What a work item returns: the CPU stream's job result.
pub(super) type JobResult = Result<(), String>;

/// Threads a kernel may use: every core (rayon's global pool; small GEMMs stay sequential).
pub(super) fn par() -> Parallelism {
    static THREADS: OnceLock<usize> = OnceLock::new();
    let n = *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Parallelism::Threads(n)
}

/// Kernel failures become the stream's failure message.
pub(super) fn kernel(result: Result<(), KernelError>) -> JobResult {
    result.map_err(|e| e.to_string())
}

/// Read locks on the buffers of a work item's inputs, one per distinct buffer.
pub(super) struct Reads<'a> {
    held: Vec<(&'a CpuBuffer, BufferRead<'a>)>,
}

impl<'a> Reads<'a> {
    /// Locks the buffers of `inputs` (`None`s skipped) for reading.
    pub(super) fn lock<const N: usize>(inputs: [Option<&'a CpuTensor>; N]) -> Self {
        let mut held: Vec<(&'a CpuBuffer, BufferRead<'a>)> = Vec::with_capacity(N);
        for t in inputs.into_iter().flatten() {
            let b = t.buffer();
            if !held.iter().any(|(h, _)| h.same_as(b)) {
                held.push((b, b.read()));
            }
        }
        Self { held }
    }

    fn guard(&self, t: &CpuTensor) -> Result<&BufferRead<'a>, String> {
        self.held
            .iter()
            .find(|(h, _)| h.same_as(t.buffer()))
            .map(|(_, g)| g)
            .ok_or_else(|| "internal: input buffer was not locked".to_owned())
    }

    /// The elements of contiguous f32 tensor `t`.
    pub(super) fn f32(&self, t: &CpuTensor) -> Result<&[f32], String> {
        slice(self.guard(t)?.as_f32(), t)
    }

    /// The elements of contiguous u32 tensor `t`.
    pub(super) fn u32(&self, t: &CpuTensor) -> Result<&[u32], String> {
        slice(self.guard(t)?.as_u32(), t)
    }

    /// [`Reads::f32`] for an optional tensor.
    pub(super) fn opt_f32(&self, t: Option<&CpuTensor>) -> Result<Option<&[f32]>, String> {
        t.map(|t| self.f32(t)).transpose()
    }

    /// The whole buffer of `t`, as `u32` words (for strided reads).
    pub(super) fn words(&self, t: &CpuTensor) -> Result<&[u32], String> {
        Ok(self.guard(t)?.as_u32())
    }

    /// The whole buffer of `t`, as `u16` halves (for strided reads of 16-bit types).
    pub(super) fn halves(&self, t: &CpuTensor) -> Result<&[u16], String> {
        Ok(self.guard(t)?.as_u16())
    }
}

/// Element range of a contiguous tensor in its buffer.
pub(super) fn range(t: &CpuTensor) -> Range<usize> {
    let start = t.layout().offset();
    start..start + t.numel()
}

/// The elements of contiguous `t` in `all`.
pub(super) fn slice<'s, E>(all: &'s [E], t: &CpuTensor) -> Result<&'s [E], String> {
    all.get(range(t)).ok_or_else(|| format!("internal: {:?} lies outside its buffer", t.layout()))
}

/// The elements of contiguous `t` in `all`, mutably.
pub(super) fn slice_mut<'s, E>(all: &'s mut [E], t: &CpuTensor) -> Result<&'s mut [E], String> {
    let layout = *t.layout();
    all.get_mut(range(t)).ok_or_else(|| format!("internal: {layout:?} lies outside its buffer"))
}

thread_local! {
    /// Scratch of this stream's worker thread for the ops that need some (attention scores, a
    /// split QKV): grown to the largest call, then reused, so warm calls allocate nothing.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` on `len` elements of this thread's scratch (contents unspecified).
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        f(&mut scratch[..len])
    })
}
