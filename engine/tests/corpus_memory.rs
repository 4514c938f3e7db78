//! Memory stays bounded: 200,000 texts streamed from JSON Lines through the corpus pipeline to
//! JSON Lines output. The embeddings alone would take 307 MB as f32 (660 MB as JSON text); the
//! process's peak resident memory must stay under 100 MB. Its own test binary, so that the peak
//! is this run's.
#![cfg(target_os = "linux")]

use std::io::{self, Read, Write};

use streampool_core::{Device, PoolConfig};
use streampool_cpu::{CpuBackend, CpuStream};
use streampool_engine::corpus::{embed_corpus, CorpusConfig, CorpusModel};
use streampool_engine::output::{JsonLayout, JsonWriter};
use streampool_engine::texts::{Format, Texts};
use streampool_engine::BatchModel;

const TEXTS: usize = 200_000;
const DIM: usize = 384;
const PEAK_BOUND_KB: usize = 100 * 1024;

/// 384 values per text, from its length.
struct Spread(Device<CpuBackend>);

impl BatchModel for Spread {
    type Backend = CpuBackend;
    type Input = usize;
    type Output = Vec<f32>;
    type Error = std::convert::Infallible;

    fn device(&self) -> &Device<CpuBackend> {
        &self.0
    }

    fn check(&self, _: &usize) -> Result<(), Self::Error> {
        Ok(())
    }

    fn run(&self, _: &CpuStream, inputs: &[usize]) -> Result<Vec<Vec<f32>>, Self::Error> {
        Ok(inputs.iter().map(|&n| (0..DIM).map(|i| (n * DIM + i) as f32 / 3.0).collect()).collect())
    }
}

impl CorpusModel for Spread {
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<usize>, Self::Error> {
        Ok(texts.iter().map(|t| t.len() / 4 + 2).collect())
    }

    fn tokens(input: &usize) -> usize {
        *input
    }
}

/// JSON Lines of `n` short texts, generated as they are read (the input is never in memory).
struct Generated {
    next: usize,
    n: usize,
    pending: Vec<u8>,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.len() < buf.len() && self.next < self.n {
            writeln!(self.pending, "{{\"text\": \"short text number {}\"}}", self.next)?;
            self.next += 1;
        }
        let k = buf.len().min(self.pending.len());
        buf[..k].copy_from_slice(&self.pending[..k]);
        self.pending.drain(..k);
        Ok(k)
    }
}

/// Bytes written, and the lines among them.
#[derive(Default)]
struct Count {
    bytes: usize,
    lines: usize,
}

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len();
        self.lines += buf.iter().filter(|&&b| b == b'\n').count();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `VmHWM` (peak resident set) of this process, in kB.
fn peak_rss_kb() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn two_hundred_thousand_streamed_texts_stay_under_the_memory_bound() {
    let model = Spread(Device::new(CpuBackend::new(), PoolConfig::with_capacity(4)));
    let input = Generated { next: 0, n: TEXTS, pending: Vec::new() };
    let texts =
        Texts::new(io::BufReader::new(input), Format::JsonLines { field: Some("text".into()) });
    let mut out = JsonWriter::new(Count::default(), JsonLayout::Lines);
    let stats = embed_corpus(
        &model,
        &CorpusConfig::default(),
        texts.map(|t| t.map(|t| t.text)),
        |rows| out.write_rows(rows),
        |_| {},
    )
    .unwrap();
    let out = out.finish().unwrap();
    assert_eq!((stats.texts, out.lines), (TEXTS, TEXTS));
    assert!(out.bytes > 600_000_000, "{} bytes of JSON written", out.bytes);
    let peak = peak_rss_kb();
    println!("peak RSS {:.1} MB for {} MB of JSON output", peak as f64 / 1024.0, out.bytes >> 20);
    assert!(peak < PEAK_BOUND_KB, "peak RSS {peak} kB over the bound of {PEAK_BOUND_KB} kB");
}
