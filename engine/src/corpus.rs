//! Embedding a whole corpus: texts stream in (any number, from any iterator), embeddings stream
//! out in input order, and every stream of the pool works on length-packed batches meanwhile.
//!
//! ```text
//! reader ──windows──▶ tokeniser ──batches──▶ worker 1 (stream 1) ──┐
//!  (texts in order)   (all cores,            worker 2 (stream 2) ──┼──results──▶ writer
//!                      sort + pack)          …                     ┘            (input order)
//! ```
//!
//! - The **reader** (its own thread) pulls texts and cuts them into windows of
//!   [`CorpusConfig::window`] texts (or [`CorpusConfig::window_bytes`] bytes).
//! - The **tokeniser** (its own thread, tokenising on every core) sorts each window by token
//!   count and packs it into batches of at most [`CorpusConfig::max_batch_tokens`] padded tokens
//!   ([`crate::batcher::pack_by`], with the model's sequence and row buckets).
//! - **Workers**, each leasing its own pool slot (stream) for the run, take batches as they come.
//!   With several devices ([`embed_corpus_on`]: one copy of the model per device), every
//!   device's workers take from the same queue, so a faster device takes more batches.
//! - The **writer** (the calling thread) puts results back in input order
//!   ([`crate::batcher::Reorder`]) and hands them to the caller's sink in chunks.
//!
//! Every queue between stages is bounded, so memory stays bounded whatever the corpus size: at
//! most two windows of texts, [`CorpusConfig::queued_batches`] batches, and the results that
//! wait for an earlier one (at most about a window's worth, since a window's batches all queue
//! before the next window's).
//!
//! Errors stop the run and come back typed ([`CorpusError`]). An input error (a bad line) stops
//! reading but the texts read before it are embedded and written first, so the output is every
//! text before the bad one; any other error (tokeniser, model, sink) stops at once.
//!
//! ```
//! use std::sync::Arc;
//! use streampool_core::{Device, PoolConfig};
//! use streampool_cpu::CpuBackend;
//! use streampool_engine::corpus::{embed_corpus, CorpusConfig, CorpusModel};
//! use streampool_engine::BatchModel;
//!
//! /// A model whose "embedding" of a text is [its byte count, its token count].
//! struct Lengths(Device<CpuBackend>);
//!
//! impl BatchModel for Lengths {
//!     type Backend = CpuBackend;
//!     type Input = (usize, usize);
//!     type Output = Vec<f32>;
//!     type Error = std::convert::Infallible;
//!     fn device(&self) -> &Device<CpuBackend> {
//!         &self.0
//!     }
//!     fn check(&self, _: &(usize, usize)) -> Result<(), Self::Error> {
//!         Ok(())
//!     }
//!     fn run(&self, _: &streampool_cpu::CpuStream, xs: &[(usize, usize)])
//!         -> Result<Vec<Vec<f32>>, Self::Error> {
//!         Ok(xs.iter().map(|&(b, t)| vec![b as f32, t as f32]).collect())
//!     }
//! }
//!
//! impl CorpusModel for Lengths {
//!     fn tokenize(&self, texts: &[&str]) -> Result<Vec<(usize, usize)>, Self::Error> {
//!         Ok(texts.iter().map(|t| (t.len(), t.split_whitespace().count() + 2)).collect())
//!     }
//!     fn tokens(input: &(usize, usize)) -> usize {
//!         input.1
//!     }
//! }
//!
//! let model = Lengths(Device::new(CpuBackend::new(), PoolConfig::with_capacity(4)));
//! let texts = ["a b c", "", "a longer text of six words"].map(|t| Ok::<_, std::io::Error>(t.to_owned()));
//! let mut rows = Vec::new();
//! let stats = embed_corpus(&model, &CorpusConfig::default(), texts, |chunk| {
//!     rows.extend_from_slice(chunk);
//!     Ok(())
//! }, |_| {})?;
//! assert_eq!(rows, [vec![5.0, 5.0], vec![0.0, 2.0], vec![26.0, 8.0]]);
//! assert_eq!((stats.texts, stats.tokens), (3, 15));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use streampool_core::{Lease, PoolError};

use crate::batcher::{pack_by, Budget, Reorder};
use crate::worker::{lease_slots, run_batch};
use crate::{BatchFailure, BatchModel};

/// A [`BatchModel`] that embeds texts: it tokenises them and says how long each input is, so
/// that a corpus can be packed into batches by length.
pub trait CorpusModel: BatchModel<Output = Vec<f32>> {
    /// Tokenise `texts` (in parallel where the model can), one input per text, in order.
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Self::Input>, Self::Error>;

    /// Tokens of one input.
    fn tokens(input: &Self::Input) -> usize;

    /// The length a batch whose longest input has `tokens` tokens is padded to (its sequence
    /// bucket). Default: no rounding.
    fn padded_len(&self, tokens: usize) -> usize {
        tokens
    }
}

/// How a corpus runs. `CorpusConfig::default()` then the fields (all public).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusConfig {
    /// Workers, each on its own pool slot (stream) for the run (default 4; on the CPU backend,
    /// whose kernels use every core already, 1 is best).
    pub workers: usize,
    /// Texts sorted and packed together (default 8,192): larger windows pad less and hold more.
    pub window: usize,
    /// Bytes of text a window holds at most (default 64 MiB), whatever its count.
    pub window_bytes: usize,
    /// Padded tokens (rows × padded length) per batch at most (default 16,384). A text longer
    /// than this runs alone.
    pub max_batch_tokens: usize,
    /// Texts per batch at most (default 512).
    pub max_batch_rows: usize,
    /// Batches waiting for a worker at most (default 64).
    pub queued_batches: usize,
    /// Rows handed to the sink per call at most (default 1,024).
    pub sink_chunk: usize,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            window: 8192,
            window_bytes: 64 << 20,
            max_batch_tokens: 16_384,
            max_batch_rows: 512,
            queued_batches: 64,
            sink_chunk: 1024,
        }
    }
}

/// What a run did so far (to the progress callback) or in all (from [`embed_corpus`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CorpusStats {
    /// Texts written to the sink.
    pub texts: usize,
    /// Tokens of the texts embedded (special tokens included).
    pub tokens: usize,
    /// Tokens computed: rows × padded length, summed over the batches run.
    pub padded_tokens: usize,
    /// Batches run.
    pub batches: usize,
    /// Time since the run started.
    pub elapsed: Duration,
}

impl CorpusStats {
    /// Share of the computed tokens that were padding, in `[0, 1]`.
    pub fn padding_share(&self) -> f64 {
        if self.padded_tokens == 0 {
            return 0.0;
        }
        1.0 - self.tokens as f64 / self.padded_tokens as f64
    }

    /// Texts written per second.
    pub fn texts_per_second(&self) -> f64 {
        self.texts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Tokens embedded per second.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why a corpus run stopped. `I`: the input's error; `M`: the model's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError<I, M> {
    /// Reading the input failed. The texts before were embedded and written.
    #[error("{0}")]
    Input(#[source] I),
    /// Tokenising a window failed.
    #[error("tokenising texts {first}..{end}: {source}")]
    Tokenize {
        /// Index of the window's first text.
        first: usize,
        /// One past its last.
        end: usize,
        /// The model's error.
        #[source]
        source: M,
    },
    /// A batch failed (the model's error, or it panicked, or it gave a wrong number of rows).
    #[error("embedding a batch of {rows} texts (text {first} among them) on {device}: {cause}")]
    Batch {
        /// The device it ran on (`cuda:1`).
        device: String,
        /// The batch's first text, by input index.
        first: usize,
        /// Texts in the batch.
        rows: usize,
        /// Why.
        #[source]
        cause: BatchFailure<M>,
    },
    /// The sink failed (the output could not be written).
    #[error("writing the embeddings: {0}")]
    Output(#[source] std::io::Error),
    /// A worker could not lease a stream (the pool is smaller than the workers asked for).
    #[error("starting worker {worker} of {workers} on {device}: {source}")]
    Start {
        /// The device.
        device: String,
        /// The worker, from 1.
        worker: usize,
        /// Workers asked for.
        workers: usize,
        /// The pool's error.
        #[source]
        source: PoolError,
    },
    /// A pipeline thread could not be spawned.
    #[error("spawning a pipeline thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// A window of texts: the input index of its first text, and the texts.
struct Window {
    first: usize,
    texts: Vec<String>,
}

/// A packed batch: the input index of each row, its tokens, and the inputs.
struct Batch<In> {
    indices: Vec<usize>,
    tokens: usize,
    padded: usize,
    inputs: Vec<In>,
}

/// A batch's results, for the writer.
struct Done {
    indices: Vec<usize>,
    tokens: usize,
    padded: usize,
    rows: Vec<Vec<f32>>,
}

/// The first error of a run, shared by its threads, and the flag that tells them to stop. Only
/// touched when something fails: not on the hot path.
struct Failure<E> {
    stop: AtomicBool,
    first: Mutex<Option<E>>,
}

impl<E> Failure<E> {
    /// Record `error` unless an earlier one is there; with `stop`, ask every stage to stop.
    fn set(&self, error: E, stop: bool) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(error);
        if stop {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn take(&self) -> Option<E> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Embed every text of `texts` with `model`, in input order: `sink` gets the embeddings in
/// chunks of consecutive texts (the first chunk starts at text 0), `progress` the statistics
/// after each chunk. Returns the totals, or the first error (see the module's documentation).
/// An empty input calls neither.
pub fn embed_corpus<M, T, I>(
    model: &M,
    config: &CorpusConfig,
    texts: T,
    sink: impl FnMut(&[Vec<f32>]) -> std::io::Result<()>,
    progress: impl FnMut(&CorpusStats),
) -> Result<CorpusStats, CorpusError<I, M::Error>>
where
    M: CorpusModel,
    T: IntoIterator<Item = Result<String, I>>,
    T::IntoIter: Send,
    I: Send,
{
    embed_corpus_on(&[model], config, texts, sink, progress)
}

/// [`embed_corpus`] over several devices: `models` holds one copy of the model per device, each
/// device gets [`CorpusConfig::workers`] workers, and all take batches from one queue (the first
/// copy tokenises). The output is the same as from one device.
pub fn embed_corpus_on<M, T, I>(
    models: &[&M],
    config: &CorpusConfig,
    texts: T,
    mut sink: impl FnMut(&[Vec<f32>]) -> std::io::Result<()>,
    mut progress: impl FnMut(&CorpusStats),
) -> Result<CorpusStats, CorpusError<I, M::Error>>
where
    M: CorpusModel,
    T: IntoIterator<Item = Result<String, I>>,
    T::IntoIter: Send,
    I: Send,
{
    let started = Instant::now();
    let workers = config.workers.max(1);
    let Some(&model) = models.first() else {
        let source = PoolError::Exhausted { capacity: 0, waited: Duration::ZERO };
        return Err(CorpusError::Start { device: "no device".into(), worker: 1, workers, source });
    };
    let mut leases = Vec::with_capacity(models.len() * workers);
    for &copy in models {
        let device = copy.device();
        let taken = lease_slots(device, workers).map_err(|(worker, source)| {
            CorpusError::Start { device: device.label(), worker, workers, source }
        })?;
        leases.extend(taken.into_iter().map(|lease| (copy, lease)));
    }
    let failure = Failure { stop: AtomicBool::new(false), first: Mutex::new(None) };
    let (window_tx, windows) = bounded::<Window>(1);
    let (batch_tx, batches) = bounded::<Batch<M::Input>>(config.queued_batches.max(1));
    let (done_tx, done) = bounded::<Done>(2 * leases.len());
    let mut stats = CorpusStats::default();
    std::thread::scope(|s| {
        let failure = &failure;
        let texts = texts.into_iter();
        let mut spawned = spawn(s, "streampool-corpus-read".into(), move || {
            read(texts, config, &window_tx, failure)
        });
        if spawned.is_ok() {
            spawned = spawn(s, "streampool-corpus-tokenize".into(), move || {
                tokenize(model, config, &windows, &batch_tx, failure)
            });
        }
        for (i, (copy, lease)) in leases.into_iter().enumerate() {
            if spawned.is_err() {
                break;
            }
            let (batches, done_tx) = (batches.clone(), done_tx.clone());
            spawned = spawn(s, format!("streampool-corpus-{i}"), move || {
                work(copy, &lease, &batches, &done_tx, failure)
            });
        }
        // Only the workers hold these now: the writer's loop ends when the last worker exits,
        // and the tokeniser's sends fail once no worker is left.
        drop((done_tx, batches));
        match spawned {
            Ok(()) => write(config, done, &mut sink, &mut progress, &mut stats, started, failure),
            // Every stage spawned so far sees its channels close and returns.
            Err(e) => failure.set(CorpusError::Spawn(e), true),
        }
    });
    stats.elapsed = started.elapsed();
    match failure.take() {
        Some(error) => Err(error),
        None => Ok(stats),
    }
}

/// Every embedding of a run, in input order, and the run's statistics.
pub type Embedded = (Vec<Vec<f32>>, CorpusStats);

/// [`embed_corpus`] of texts that cannot fail, collecting every embedding in memory (in input
/// order) with the run's statistics: for inputs that fit in memory.
pub fn embed_all<M: CorpusModel>(
    model: &M,
    config: &CorpusConfig,
    texts: impl IntoIterator<Item = String, IntoIter: Send>,
) -> Result<Embedded, CorpusError<std::convert::Infallible, M::Error>> {
    let mut rows = Vec::new();
    let texts = texts.into_iter().map(Ok);
    let stats = embed_corpus(
        model,
        config,
        texts,
        |chunk| {
            rows.extend_from_slice(chunk);
            Ok(())
        },
        |_| {},
    )?;
    Ok((rows, stats))
}

/// Spawn a named pipeline thread in scope `s` (joined when the scope ends).
fn spawn<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    name: String,
    f: impl FnOnce() + Send + 'scope,
) -> std::io::Result<()> {
    std::thread::Builder::new().name(name).spawn_scoped(s, f).map(drop)
}

/// The reader: windows of texts, in order, until the input ends, fails or the run stops.
fn read<I, E>(
    texts: impl Iterator<Item = Result<String, I>>,
    config: &CorpusConfig,
    windows: &Sender<Window>,
    failure: &Failure<CorpusError<I, E>>,
) {
    let (max_texts, max_bytes) = (config.window.max(1), config.window_bytes.max(1));
    let mut window = Window { first: 0, texts: Vec::new() };
    let mut bytes = 0;
    for text in texts {
        if failure.stopped() {
            return;
        }
        match text {
            Ok(text) => {
                bytes += text.len();
                window.texts.push(text);
            }
            Err(e) => {
                // The texts before the bad one still run: stop reading, not the run.
                failure.set(CorpusError::Input(e), false);
                break;
            }
        }
        if window.texts.len() >= max_texts || bytes >= max_bytes {
            let first = window.first + window.texts.len();
            let full = std::mem::replace(&mut window, Window { first, texts: Vec::new() });
            bytes = 0;
            if windows.send(full).is_err() {
                return;
            }
        }
    }
    if !window.texts.is_empty() {
        let _ = windows.send(window);
    }
}

/// The tokeniser: each window tokenised (every core), sorted and packed into batches.
fn tokenize<M: CorpusModel, I>(
    model: &M,
    config: &CorpusConfig,
    windows: &Receiver<Window>,
    batches: &Sender<Batch<M::Input>>,
    failure: &Failure<CorpusError<I, M::Error>>,
) {
    let budget = Budget { max_tokens: config.max_batch_tokens, max_rows: config.max_batch_rows };
    for window in windows {
        if failure.stopped() {
            return;
        }
        let refs: Vec<&str> = window.texts.iter().map(String::as_str).collect();
        let end = window.first + refs.len();
        let inputs = match model.tokenize(&refs) {
            Ok(inputs) if inputs.len() == refs.len() => inputs,
            Ok(inputs) => {
                let cause = BatchFailure::OutputCount { inputs: refs.len(), outputs: inputs.len() };
                let (first, rows, device) = (window.first, refs.len(), "the tokeniser".into());
                failure.set(CorpusError::Batch { device, first, rows, cause }, true);
                return;
            }
            Err(source) => {
                failure.set(CorpusError::Tokenize { first: window.first, end, source }, true);
                return;
            }
        };
        drop(refs);
        drop(window.texts);
        let lengths: Vec<usize> = inputs.iter().map(M::tokens).collect();
        let packed =
            pack_by(&lengths, budget, |len| model.padded_len(len), |rows| model.batch_size(rows));
        // Each input moves into its batch once.
        let mut slots: Vec<Option<M::Input>> = inputs.into_iter().map(Some).collect();
        for batch in packed {
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            let batch = Batch {
                tokens: batch.iter().map(|&i| lengths[i]).sum(),
                padded: batch.len() * model.padded_len(longest),
                inputs: batch.iter().filter_map(|&i| slots[i].take()).collect(),
                indices: batch.iter().map(|&i| window.first + i).collect(),
            };
            if batches.send(batch).is_err() {
                return;
            }
        }
    }
}

/// A worker: batches on its own stream until there are no more or the run stops.
fn work<M: CorpusModel, I>(
    model: &M,
    lease: &Lease<M::Backend>,
    batches: &Receiver<Batch<M::Input>>,
    done: &Sender<Done>,
    failure: &Failure<CorpusError<I, M::Error>>,
) {
    for batch in batches {
        if failure.stopped() {
            return;
        }
        let rows = match run_batch(model, lease.stream(), &batch.inputs) {
            Ok(rows) => rows,
            Err(cause) => {
                let first = batch.indices.iter().copied().min().unwrap_or(0);
                let (rows, device) = (batch.indices.len(), model.device().label());
                return failure.set(CorpusError::Batch { device, first, rows, cause }, true);
            }
        };
        let Batch { indices, tokens, padded, .. } = batch;
        if done.send(Done { indices, tokens, padded, rows }).is_err() {
            return;
        }
    }
}

/// The writer: results back in input order, to the sink in chunks. Owns the results' receiver,
/// so that workers blocked on a full queue see it close when the writer stops.
fn write<I, E>(
    config: &CorpusConfig,
    done: Receiver<Done>,
    sink: &mut impl FnMut(&[Vec<f32>]) -> std::io::Result<()>,
    progress: &mut impl FnMut(&CorpusStats),
    stats: &mut CorpusStats,
    started: Instant,
    failure: &Failure<CorpusError<I, E>>,
) {
    let mut order = Reorder::new();
    let chunk_rows = config.sink_chunk.max(1);
    let mut chunk = Vec::with_capacity(chunk_rows);
    let mut flush = |chunk: &mut Vec<Vec<f32>>, stats: &mut CorpusStats| {
        if chunk.is_empty() {
            return true;
        }
        if let Err(e) = sink(chunk) {
            failure.set(CorpusError::Output(e), true);
            return false;
        }
        stats.texts += chunk.len();
        stats.elapsed = started.elapsed();
        chunk.clear();
        progress(stats);
        true
    };
    for result in done.iter() {
        if failure.stopped() {
            return;
        }
        stats.tokens += result.tokens;
        stats.padded_tokens += result.padded;
        stats.batches += 1;
        for (i, row) in result.indices.into_iter().zip(result.rows) {
            order.push(i, row);
        }
        for row in order.drain_ready() {
            chunk.push(row);
            if chunk.len() == chunk_rows && !flush(&mut chunk, stats) {
                return;
            }
        }
        // Write what is ready rather than hold it for a full chunk when the next result is
        // far off (a window's last batch).
        if !chunk.is_empty() && order.waiting() == 0 && !flush(&mut chunk, stats) {
            return;
        }
    }
    flush(&mut chunk, stats);
}
