//! `streampool_core::Backend` for the CPU.

use std::time::Duration;

use streampool_core::{Backend, BackendError, Stream, Timing};

use crate::{CpuBuffer, CpuEvent, CpuStream};

/// The CPU backend.
#[derive(Debug, Clone, Default)]
pub struct CpuBackend {
    /// Which CPU device this is, when several share the cores (`--device cpu:0,1`).
    ordinal: usize,
}

impl CpuBackend {
    /// The CPU backend (always available).
    pub fn new() -> Self {
        Self::default()
    }

    /// CPU device number `ordinal`: several CPU devices are separate pools, models and engines
    /// on the same cores (how a list of devices is tested without GPUs).
    pub fn with_ordinal(ordinal: usize) -> Self {
        Self { ordinal }
    }
}

impl Backend for CpuBackend {
    type Stream = CpuStream;
    type Event = CpuEvent;
    type Buffer = CpuBuffer;

    fn kind(&self) -> &'static str {
        "cpu"
    }

    fn ordinal(&self) -> usize {
        self.ordinal
    }

    fn name(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!("cpu ({cores} cores)")
    }

    fn new_stream(&self, slot: usize) -> Result<CpuStream, BackendError> {
        CpuStream::new(slot)
    }

    fn new_event(&self, timing: Timing) -> Result<CpuEvent, BackendError> {
        Ok(CpuEvent::new(timing))
    }

    fn alloc(&self, bytes: usize) -> Result<CpuBuffer, BackendError> {
        Ok(CpuBuffer::zeroed(bytes))
    }

    fn buffer_len(buffer: &CpuBuffer) -> usize {
        buffer.len()
    }
}

fn check_range(what: &str, len: usize, offset: usize, count: usize) -> Result<(), BackendError> {
    match offset.checked_add(count) {
        Some(end) if end <= len => Ok(()),
        _ => Err(BackendError::InvalidArgument(format!(
            "{what}: {count} bytes at offset {offset} do not fit a buffer of {len} bytes"
        ))),
    }
}

impl Stream<CpuBackend> for CpuStream {
    fn slot(&self) -> usize {
        CpuStream::slot(self)
    }

    fn record(&self, event: &CpuEvent) -> Result<(), BackendError> {
        self.enqueue(event.begin_record())
    }

    fn wait_event(&self, event: &CpuEvent) -> Result<(), BackendError> {
        match event.pending_generation() {
            // Already complete (or never recorded): nothing to order after.
            None => Ok(()),
            Some(generation) => {
                let event = event.clone();
                self.enqueue(move || {
                    event.wait_for(generation);
                    Ok(())
                })
            }
        }
    }

    fn synchronize(&self) -> Result<(), BackendError> {
        CpuStream::synchronize(self)
    }

    fn write(&self, dst: &CpuBuffer, offset: usize, src: &[u8]) -> Result<(), BackendError> {
        check_range("write", dst.len(), offset, src.len())?;
        let data = src.to_vec();
        let dst = dst.clone();
        self.enqueue(move || {
            dst.write().as_bytes_mut()[offset..offset + data.len()].copy_from_slice(&data);
            Ok(())
        })
    }

    fn read(&self, src: &CpuBuffer, offset: usize, dst: &mut [u8]) -> Result<(), BackendError> {
        check_range("read", src.len(), offset, dst.len())?;
        CpuStream::synchronize(self)?;
        dst.copy_from_slice(&src.read().as_bytes()[offset..offset + dst.len()]);
        Ok(())
    }

    fn fill_u32(&self, dst: &CpuBuffer, value: u32) -> Result<(), BackendError> {
        let dst = dst.clone();
        self.enqueue(move || {
            dst.write().as_u32_mut().fill(value);
            Ok(())
        })
    }

    fn mul_add_u32(&self, buf: &CpuBuffer, mul: u32, add: u32) -> Result<(), BackendError> {
        let buf = buf.clone();
        self.enqueue(move || {
            for w in buf.write().as_u32_mut() {
                *w = w.wrapping_mul(mul).wrapping_add(add);
            }
            Ok(())
        })
    }

    fn copy(&self, src: &CpuBuffer, dst: &CpuBuffer) -> Result<(), BackendError> {
        if src.len() != dst.len() {
            return Err(BackendError::InvalidArgument(format!(
                "copy: source has {} bytes, destination {}",
                src.len(),
                dst.len()
            )));
        }
        if src.same_as(dst) {
            return Ok(());
        }
        let (src, dst) = (src.clone(), dst.clone());
        self.enqueue(move || {
            let data = src.read();
            dst.write().as_bytes_mut().copy_from_slice(data.as_bytes());
            Ok(())
        })
    }

    fn hold(&self, duration: Duration) -> Result<(), BackendError> {
        self.enqueue(move || {
            std::thread::sleep(duration);
            Ok(())
        })
    }
}
