//! The workers the bench runs, one per thread.

use streampool_core::conformance::{expected, steps_for};
use streampool_core::{Backend, Device, Stream};

use super::measure::Worker;

/// The core's portable ops: a request is `fill` + 4 multiply-adds over `words × batch` words,
/// then a read-back whose every word is checked.
pub struct DemoWorker<B: Backend> {
    buf: B::Buffer,
    batch: usize,
    host: Vec<u8>,
    round: usize,
}

impl<B: Backend> DemoWorker<B> {
    /// A worker with its own buffer.
    pub fn new(device: &Device<B>, words: usize, batch: usize) -> Result<Self, String> {
        let bytes = words * batch * 4;
        let buf = device.alloc(bytes).map_err(|e| e.to_string())?;
        Ok(Self { buf, batch, host: vec![0; bytes], round: 0 })
    }
}

impl<B: Backend> Worker<B> for DemoWorker<B> {
    fn request(&mut self, stream: &B::Stream) -> Result<usize, String> {
        let (seed, steps) = (self.round as u32, steps_for(stream.slot(), self.round));
        self.round += 1;
        let mut run = || -> Result<(), streampool_core::BackendError> {
            stream.fill_u32(&self.buf, seed)?;
            for &(m, a) in &steps {
                stream.mul_add_u32(&self.buf, m, a)?;
            }
            stream.read(&self.buf, 0, &mut self.host)
        };
        run().map_err(|e| e.to_string())?;
        let want = expected(seed, &steps).to_le_bytes();
        if !self.host.chunks_exact(4).all(|w| w == want) {
            return Err(format!("stream {} computed a wrong result", stream.slot()));
        }
        Ok(self.batch)
    }
}
