//! Writing embeddings as they come, chunk by chunk: one JSON array of arrays, JSON Lines (an
//! array per line), or a NumPy `.npy` file ([`crate::npy`]).
//!
//! Formatting floats as JSON text costs more than computing them on a GPU (384 shortest
//! round-trip decimals per embedding), so each chunk is formatted on every core (rayon) and
//! written in order.
//!
//! ```
//! use streampool_engine::output::{JsonLayout, JsonWriter};
//!
//! let mut json = JsonWriter::new(Vec::new(), JsonLayout::Array);
//! json.write_rows(&[vec![0.5, -1.0]])?;
//! json.write_rows(&[vec![0.25, 2.0]])?;
//! assert_eq!(json.finish()?, b"[[0.5,-1.0],[0.25,2.0]]\n");
//!
//! let mut lines = JsonWriter::new(Vec::new(), JsonLayout::Lines);
//! lines.write_rows(&[vec![0.5, -1.0], vec![0.25, 2.0]])?;
//! assert_eq!(lines.finish()?, b"[0.5,-1.0]\n[0.25,2.0]\n");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{Seek, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use rayon::prelude::*;

use crate::npy::{NpyDtype, NpyWriter};

/// How rows are laid out as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonLayout {
    /// One array of arrays (`[[…],[…]]` and a newline), as `json.load` reads it.
    Array,
    /// One array per line (JSON Lines).
    Lines,
}

/// Rows formatted per task: enough to spread a chunk over the cores, few enough that each task
/// is worth its scheduling.
const ROWS_PER_TASK: usize = 32;

/// Writes rows of floats as JSON to `out`, chunk by chunk, formatting each chunk in parallel.
#[derive(Debug)]
pub struct JsonWriter<W: Write> {
    out: W,
    layout: JsonLayout,
    rows: usize,
}

impl<W: Write> JsonWriter<W> {
    /// Nothing written yet.
    pub fn new(out: W, layout: JsonLayout) -> Self {
        Self { out, layout, rows: 0 }
    }

    /// Append `rows`.
    pub fn write_rows(&mut self, rows: &[Vec<f32>]) -> std::io::Result<()> {
        let (layout, first) = (self.layout, self.rows);
        let parts: Vec<Vec<u8>> = rows
            .par_chunks(ROWS_PER_TASK)
            .enumerate()
            .map(|(task, chunk)| {
                let mut buf =
                    Vec::with_capacity(chunk.len() * chunk.first().map_or(0, Vec::len) * 12);
                for (i, row) in chunk.iter().enumerate() {
                    if layout == JsonLayout::Array {
                        buf.push(if first + task * ROWS_PER_TASK + i == 0 { b'[' } else { b',' });
                    }
                    // Writing floats to a Vec cannot fail (serde_json writes NaN as null).
                    let _ = serde_json::to_writer(&mut buf, row);
                    if layout == JsonLayout::Lines {
                        buf.push(b'\n');
                    }
                }
                buf
            })
            .collect();
        for part in parts {
            self.out.write_all(&part)?;
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Close the array (for [`JsonLayout::Array`]: `[]` when no row was written), flush, and
    /// return the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        if self.layout == JsonLayout::Array {
            self.out.write_all(if self.rows == 0 { b"[]\n" } else { b"]\n" })?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Any of the outputs, behind one type: what a command line picks at run time.
#[derive(Debug)]
pub enum EmbeddingWriter<W: Write, F: Write + Seek> {
    /// JSON text.
    Json(JsonWriter<W>),
    /// A `.npy` file.
    Npy(NpyWriter<F>),
}

impl<W: Write, F: Write + Seek> EmbeddingWriter<W, F> {
    /// Append `rows`.
    pub fn write_rows(&mut self, rows: &[Vec<f32>]) -> std::io::Result<()> {
        match self {
            Self::Json(json) => json.write_rows(rows),
            Self::Npy(npy) => npy.write_rows(rows),
        }
    }

    /// Finish the output (close the JSON array, fix the `.npy` header) and flush it.
    pub fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Json(json) => json.finish().map(drop),
            Self::Npy(npy) => npy.finish().map(drop),
        }
    }

    /// A `.npy` writer of rows of `dim` in `dtype` at `out`.
    pub fn npy(out: F, dim: usize, dtype: NpyDtype) -> std::io::Result<Self> {
        Ok(Self::Npy(NpyWriter::new(out, dim, dtype)?))
    }
}

/// Bytes handed to the writing thread at once.
const BLOCK: usize = 1 << 20;

/// What the writing thread is asked to do.
enum Io {
    Write(Vec<u8>),
    /// Flush, then answer with the first error met so far (or none).
    Flush(Sender<std::io::Result<()>>),
}

/// A `Write` that writes on a thread of its own, in blocks of 1 MiB, so that formatting the next
/// chunk overlaps writing this one. `flush` waits until everything before it is written and
/// flushed, and reports the first write error; an error also comes back from the next `write`
/// once the thread has stopped. Dropping it without `flush` still writes everything (the thread
/// is joined) but cannot report an error.
#[derive(Debug)]
pub struct BackgroundWriter {
    blocks: Option<Sender<Io>>,
    pending: Vec<u8>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundWriter {
    /// Start the writing thread for `out` (named `streampool-writer`).
    pub fn spawn(out: impl Write + Send + 'static) -> std::io::Result<Self> {
        // Two blocks in flight: one being written, one waiting.
        let (blocks, queue) = bounded::<Io>(2);
        let thread = std::thread::Builder::new()
            .name("streampool-writer".into())
            .spawn(move || write_blocks(out, &queue))?;
        Ok(Self { blocks: Some(blocks), pending: Vec::with_capacity(BLOCK), thread: Some(thread) })
    }

    fn send(&mut self, io: Io) -> std::io::Result<()> {
        let stopped = || std::io::Error::other("the writing thread stopped after an error");
        let blocks = self.blocks.as_ref().ok_or_else(stopped)?;
        blocks.send(io).map_err(|_| stopped())
    }
}

/// The writing thread: every block in order; after an error, only answers flushes (with it).
fn write_blocks(mut out: impl Write, queue: &Receiver<Io>) {
    let mut failed: Option<std::io::Error> = None;
    for io in queue {
        match io {
            Io::Write(block) if failed.is_none() => {
                if let Err(e) = out.write_all(&block) {
                    failed = Some(e);
                }
            }
            Io::Write(_) => {}
            Io::Flush(reply) => {
                let result = match &failed {
                    Some(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                    None => out.flush(),
                };
                let _ = reply.send(result);
            }
        }
    }
    let _ = out.flush();
}

impl Write for BackgroundWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= BLOCK {
            let block = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
            self.send(Io::Write(block))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            self.send(Io::Write(block))?;
        }
        let (reply, answer) = bounded(1);
        self.send(Io::Flush(reply))?;
        answer.recv().map_err(|_| std::io::Error::other("the writing thread stopped"))?
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            let _ = self.send(Io::Write(block));
        }
        self.blocks = None; // the thread's loop ends
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, dim: usize) -> Vec<Vec<f32>> {
        (0..n).map(|r| (0..dim).map(|c| (r * dim + c) as f32 / 7.0 - 3.0).collect()).collect()
    }

    /// Written in chunks of any size, in parallel: the text is serde_json's of the whole.
    #[test]
    fn chunked_parallel_json_equals_serde_json_of_the_whole() {
        let all = rows(257, 5);
        for chunk in [1, 7, 32, 100, 257] {
            let mut array = JsonWriter::new(Vec::new(), JsonLayout::Array);
            let mut lines = JsonWriter::new(Vec::new(), JsonLayout::Lines);
            for part in all.chunks(chunk) {
                array.write_rows(part).unwrap();
                lines.write_rows(part).unwrap();
            }
            assert_eq!(array.rows(), 257);
            let mut want = serde_json::to_vec(&all).unwrap();
            want.push(b'\n');
            assert_eq!(array.finish().unwrap(), want, "chunks of {chunk}");
            let want: String =
                all.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
            assert_eq!(String::from_utf8(lines.finish().unwrap()).unwrap(), want);
        }
    }

    /// Bytes in order across many writes and flushes; a write error comes back from `flush`.
    #[test]
    fn the_background_writer_keeps_order_and_reports_errors() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let shared = Shared::default();
        let mut out = BackgroundWriter::spawn(shared.clone()).unwrap();
        let mut want = Vec::new();
        for i in 0..5000u32 {
            let line = format!("{i} {}\n", "x".repeat((i % 700) as usize));
            out.write_all(line.as_bytes()).unwrap();
            want.extend_from_slice(line.as_bytes());
            if i % 1000 == 0 {
                out.flush().unwrap();
                assert_eq!(shared.0.lock().unwrap().len(), want.len(), "flushed at {i}");
            }
        }
        out.flush().unwrap();
        drop(out);
        assert_eq!(*shared.0.lock().unwrap(), want);

        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = BackgroundWriter::spawn(Full).unwrap();
        out.write_all(&vec![b'a'; 3 * BLOCK]).unwrap();
        let e = out.flush().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
    }

    #[test]
    fn empty_outputs() {
        let array = JsonWriter::new(Vec::new(), JsonLayout::Array);
        assert_eq!(array.finish().unwrap(), b"[]\n");
        let mut lines = JsonWriter::new(Vec::new(), JsonLayout::Lines);
        lines.write_rows(&[]).unwrap();
        assert!(lines.finish().unwrap().is_empty());
    }
}
