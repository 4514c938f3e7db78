//! Graph mode: MiniLM's forward captured once per (slot, shape bucket, load class) as a graph
//! and replayed, with inputs and outputs staged through host staging memory. A capability of
//! the backend ([`Ops::supports_graphs`]: the CUDA backend's CUDA graphs and pinned memory).
//!
//! [`ExecMode`] picks the path per call, through [`MiniLm::embed_encodings_mode`] (and
//! [`MiniLm::embed_mode`]): code that does not know its backend (the bench, the CLI) asks for
//! [`ExecMode::Graph`] and gets [`ModelError::Unsupported`] where the backend has no graphs.
//!
//! # How a graphed call runs
//!
//! The batch is validated, sorted by length and cut into chunks exactly as in eager mode; each
//! chunk is padded to its sequence bucket (a multiple of [`crate::minilm::SEQ_BUCKET`], at most
//! `max_seq_length`) and to a row bucket ([`ROW_BUCKETS`]; extra rows repeat the first
//! sequence and are dropped). The model owns its graphs: per pool slot (`SlotGraphs`, behind
//! that slot's own lock: only the slot's lease holder uses it, so it is uncontended) one set of
//! activation buffers and a map from (rows, seq) bucket to an entry.
//!
//! The slot's entries share its activation buffers: one slot's graphs run one after another on
//! its stream, and each call reads its results before the next replay, so no two of them are in
//! flight at once. The buffers are sized for the largest bucket the slot has met (not the slot's
//! eager workspace, which grows on its own: a captured graph holds raw addresses); when a larger
//! bucket comes, they grow and every entry of the slot is dropped and recaptured on its next
//! use. So a slot holds one bucket's activations, however many buckets it has graphs for (a
//! corpus meets dozens). An entry owns
//!
//! - views of the slot's activation buffers for exactly its bucket;
//! - staging buffers for the ids, segment ids, mask and pooled output;
//! - one graph per load class met ([`streampool_core::load_class`] of the forwards running when
//!   the call began: the GEMM kernels are planned for it) of [copy ids, segment ids, mask from
//!   staging → embeddings → encoder layers → pooling and normalisation → copy pooled rows to
//!   staging].
//!
//! The first use of a bucket and load class on a slot runs the forward eagerly once on the
//! entry's buffers (kernels compiled and loaded, GEMM plans made), then captures it. Every call
//! writes the padded inputs into the staging buffers, replays the graph, and reads the staged
//! output (host access waits for the replay). The graphs are dropped with the model.

use std::collections::hash_map::{self, HashMap};

use streampool_core::{load_class, Stream};
use streampool_tensor::Ops;

use crate::loading::Encoding;
use crate::minilm::batch::{self, Padded, SeqPad, MAX_BATCH, MAX_TOKENS};
use crate::minilm::pooling;
use crate::minilm::workspace::{Activations, MiniLmWorkspace};
use crate::workspace::SlotWorkspaces;
use crate::{MiniLm, ModelError};

/// How a model call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ExecMode {
    /// Op by op, on the slot's workspace (every backend).
    #[default]
    Eager,
    /// Replays of a graph captured once per (slot, shape bucket, load class), inputs and
    /// outputs staged through host memory (backends with graphs: CUDA).
    Graph,
}

impl ExecMode {
    /// The mode's name as the CLI spells it: `"eager"` or `"graph"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Eager => "eager",
            Self::Graph => "graph",
        }
    }

    /// Whether backend `B` runs this mode: [`ExecMode::Eager`] everywhere,
    /// [`ExecMode::Graph`] where [`Ops::supports_graphs`].
    pub fn supported_on<B: Ops>(self) -> bool {
        match self {
            Self::Eager => true,
            Self::Graph => B::supports_graphs(),
        }
    }
}

impl std::fmt::Display for ExecMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ExecMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "eager" => Ok(Self::Eager),
            "graph" => Ok(Self::Graph),
            _ => Err(format!("unknown execution mode {s:?}: expected \"eager\" or \"graph\"")),
        }
    }
}

/// Rows a graph is captured for: a chunk of `n` sequences runs in the smallest bucket that holds
/// it (a chunk has at most [`crate::minilm::max_rows`] of its padded length, a power of two up to
/// [`crate::minilm::MAX_BATCH`] = 512, so an entry holds at most [`crate::minilm::MAX_TOKENS`]
/// tokens' activations).
pub const ROW_BUCKETS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// The row bucket of a chunk of `n` sequences (`n` itself past the largest bucket).
fn rows_bucket(n: usize) -> usize {
    ROW_BUCKETS.iter().copied().find(|&r| r >= n).unwrap_or(n)
}

/// A model's graphs: per slot (each behind the slot's own lock, see [`SlotWorkspaces`]). Owned by
/// the model and dropped with it.
pub(crate) type GraphCache<B> = SlotWorkspaces<SlotGraphs<B>>;

/// One slot's graphs: the activation buffers its entries share, and the entries by (rows, seq)
/// bucket.
pub(crate) struct SlotGraphs<B: Ops> {
    /// Declared first, so the graphs are dropped before the buffers their nodes use.
    entries: HashMap<(usize, usize), Entry<B>>,
    arena: MiniLmWorkspace<B>,
    /// The (rows, tokens) the arena holds: every entry's bucket fits both.
    rows: usize,
    tokens: usize,
}

impl<B: Ops> Default for SlotGraphs<B> {
    fn default() -> Self {
        Self { entries: HashMap::new(), arena: MiniLmWorkspace::default(), rows: 0, tokens: 0 }
    }
}

impl<B: Ops> SlotGraphs<B> {
    /// The entry for bucket `(rows, seq)`, made on first use. A bucket larger than the arena
    /// grows it first, dropping every entry (their graphs hold the old buffers' addresses).
    fn entry(
        &mut self,
        model: &MiniLm<B>,
        stream: &B::Stream,
        (rows, seq): (usize, usize),
    ) -> Result<&mut Entry<B>, ModelError> {
        if rows > self.rows || rows * seq > self.tokens {
            self.entries.clear();
            // At least doubling (within a chunk's limits), so that a slot meeting ever larger
            // buckets recaptures a few times, not at each.
            self.rows = rows.max((2 * self.rows).min(MAX_BATCH));
            self.tokens = (rows * seq).max((2 * self.tokens).min(MAX_TOKENS));
            // Every view of a bucket within (rows, tokens) fits these shapes' buffers.
            let dims = model.dims(self.rows, self.tokens.div_ceil(self.rows));
            self.arena.views(stream, dims, model.precision.dtype())?;
        }
        match self.entries.entry((rows, seq)) {
            hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            hash_map::Entry::Vacant(e) => {
                let entry = Entry::new(model, stream, &mut self.arena, (rows, seq))?;
                Ok(e.insert(entry))
            }
        }
    }

    /// Bytes of the slot's shared activation buffers.
    fn bytes(&self) -> usize {
        self.arena.capacity() * 4
    }

    /// Graphs captured on this slot.
    fn graph_count(&self) -> usize {
        self.entries.values().map(|e| e.graphs.len()).sum()
    }
}

/// The captured forwards of `rows` sequences of `seq` tokens on one slot: one graph per load
/// class met so far, all on the same buffers (one slot's graphs run one after another, on its
/// stream).
pub(crate) struct Entry<B: Ops> {
    /// (load class, graph). Declared first, so dropped before the buffers their nodes use.
    graphs: Vec<(usize, B::Graph)>,
    /// Views of the slot's shared activation buffers for exactly this bucket.
    acts: Activations<B>,
    /// Staging for `acts.ids`, `acts.type_ids`, `acts.mask` and `acts.pooled`, and for
    /// `acts.pool_mask` where the model pools without the prompt.
    ids: B::Staging,
    type_ids: B::Staging,
    mask: B::Staging,
    pool_mask: Option<B::Staging>,
    pooled: B::Staging,
    rows: usize,
    seq: usize,
}

impl<B: Ops> Entry<B> {
    /// The bucket's views of `arena` (already large enough) and its staging buffers (no graph
    /// yet).
    fn new(
        model: &MiniLm<B>,
        stream: &B::Stream,
        arena: &mut MiniLmWorkspace<B>,
        (rows, seq): (usize, usize),
    ) -> Result<Self, ModelError> {
        let acts = arena.views(stream, model.dims(rows, seq), model.precision.dtype())?;
        let backend = model.device.backend();
        let stage =
            |t: &streampool_tensor::Tensor<B>| B::staging(backend, B::buffer_len(t.buffer()));
        let (ids, type_ids) = (stage(&acts.ids)?, stage(&acts.type_ids)?);
        let (mask, pooled) = (stage(&acts.mask)?, stage(&acts.pooled)?);
        let pool_mask = model.head.skips_prompt.then(|| stage(&acts.pool_mask)).transpose()?;
        Ok(Self { graphs: Vec::new(), acts, ids, type_ids, mask, pool_mask, pooled, rows, seq })
    }

    /// The index in `graphs` of the graph for load class `load`: captured on first use (the
    /// stream's GEMMs already planned for that load) after one eager run of the forward on the
    /// entry's buffers (kernels loaded, GEMM plans made).
    fn graph(
        &mut self,
        model: &MiniLm<B>,
        stream: &B::Stream,
        load: usize,
    ) -> Result<usize, ModelError> {
        if let Some(i) = self.graphs.iter().position(|(l, _)| *l == load) {
            return Ok(i);
        }
        let Self { acts, ids, type_ids, mask, pool_mask, pooled, .. } = &*self;
        // Warm-up input: every token a (zero) [PAD] id, attended and pooled (overwritten by
        // each call).
        for m in std::iter::once(mask).chain(pool_mask) {
            B::with_staging(m, |bytes| {
                bytes.chunks_exact_mut(4).for_each(|b| b.copy_from_slice(&1f32.to_ne_bytes()))
            })?;
        }
        let forward = || -> Result<(), ModelError> {
            B::copy_from_staging(stream, ids, acts.ids.buffer())?;
            B::copy_from_staging(stream, type_ids, acts.type_ids.buffer())?;
            B::copy_from_staging(stream, mask, acts.mask.buffer())?;
            if let Some(pool_mask) = pool_mask {
                B::copy_from_staging(stream, pool_mask, acts.pool_mask.buffer())?;
            }
            model.forward(stream, acts)?;
            B::copy_to_staging(stream, acts.pooled.buffer(), pooled)?;
            Ok(())
        };
        forward()?;
        stream.synchronize()?;
        let graph = B::capture(stream, forward)?;
        self.graphs.push((load, graph));
        Ok(self.graphs.len() - 1)
    }

    /// Stage `chunk` (of at most `rows` sequences padded to `seq`), replay graph `i`, and return
    /// its pooled rows in chunk order.
    fn run(
        &self,
        stream: &B::Stream,
        i: usize,
        chunk: &Padded,
        dim: usize,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        debug_assert_eq!(chunk.seq, self.seq);
        debug_assert_eq!(self.acts.pooled.shape(), [self.rows, dim]);
        let n = chunk.order.len();
        stage::<B>(&self.ids, &u32_bytes(&chunk.ids), n, self.rows)?;
        stage::<B>(&self.type_ids, &u32_bytes(&chunk.type_ids), n, self.rows)?;
        let mask: Vec<u8> = chunk.mask.iter().flat_map(|v| v.to_ne_bytes()).collect();
        stage::<B>(&self.mask, &mask, n, self.rows)?;
        if let Some(staging) = &self.pool_mask {
            let mask: Vec<u8> = chunk.pooled().iter().flat_map(|v| v.to_ne_bytes()).collect();
            stage::<B>(staging, &mask, n, self.rows)?;
        }
        B::replay(stream, &self.graphs[i].1)?;
        let dtype = self.acts.pooled.dtype();
        // Waits for the replay.
        let all = B::with_staging(&self.pooled, |bytes| {
            pooling::widen(dtype, &bytes[..self.rows * dim * dtype.size()])
        })?;
        Ok(all.chunks_exact(dim).take(n).map(<[f32]>::to_vec).collect())
    }
}

/// Native-endian bytes of `values`.
fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// Write `src` (the bytes of `n` padded rows) into `staging`'s first `rows` rows; the rows past
/// `n` repeat the first (a real sequence, so every row computes finite values; their results are
/// dropped).
fn stage<B: Ops>(
    staging: &B::Staging,
    src: &[u8],
    n: usize,
    rows: usize,
) -> Result<(), ModelError> {
    let row = src.len() / n;
    B::with_staging(staging, |dst| {
        let (head, tail) = dst[..rows * row].split_at_mut(src.len());
        head.copy_from_slice(src);
        for r in tail.chunks_exact_mut(row) {
            r.copy_from_slice(&src[..row]);
        }
    })?;
    Ok(())
}

/// The error of [`ExecMode::Graph`] where it cannot run.
fn unsupported() -> ModelError {
    ModelError::Unsupported {
        what: "graph mode".into(),
        reason: "this backend does not capture graphs (the CUDA backend does: build with the \
                 `cuda` feature)"
            .into(),
    }
}

impl<B: Ops> MiniLm<B> {
    /// [`MiniLm::embed`] in `mode`: tokenises `texts`, then
    /// [`MiniLm::embed_encodings_mode`].
    pub fn embed_mode(
        &self,
        stream: &B::Stream,
        texts: &[&str],
        mode: ExecMode,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Err(ModelError::EmptyBatch);
        }
        let encodings = self.tokenizer().encode_batch(texts)?;
        self.embed_encodings_mode(stream, &encodings, mode)
    }

    /// [`MiniLm::embed_encodings`] in `mode`. [`ExecMode::Eager`] is exactly
    /// [`MiniLm::embed_encodings`]; [`ExecMode::Graph`] replays graphs (see [`crate::graph`])
    /// and gives the same results (within float rounding of the GEMMs' shapes), or
    /// [`ModelError::Unsupported`] on a backend without graphs. Blocks until the results are on
    /// the host.
    pub fn embed_encodings_mode(
        &self,
        stream: &B::Stream,
        encodings: &[Encoding],
        mode: ExecMode,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        match mode {
            ExecMode::Eager => self.embed_encodings(stream, encodings),
            ExecMode::Graph => self.embed_graphed(stream, encodings),
        }
    }

    /// [`ExecMode::Graph`].
    fn embed_graphed(
        &self,
        stream: &B::Stream,
        encodings: &[Encoding],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if !B::supports_graphs() {
            return Err(unsupported());
        }
        batch::validate(encodings, &self.config.bert, self.config.max_seq_length)?;
        // Held for the whole call: the slot's buffers are in use until the results are read.
        let mut slot = self.graphs.lock(stream.slot())?;
        let chunks = batch::chunks(encodings, self.config.max_seq_length, SeqPad::Bucket);
        let dim = self.dim();
        let running = self.device.enter();
        let load = load_class(running.load());
        B::plan_for_load(stream, load);
        let mut results = vec![Vec::new(); encodings.len()];
        for chunk in &chunks {
            let entry = slot.entry(self, stream, (rows_bucket(chunk.order.len()), chunk.seq))?;
            let i = entry.graph(self, stream, load)?;
            for (&i, row) in chunk.order.iter().zip(entry.run(stream, i, chunk, dim)?) {
                results[i] = row;
            }
        }
        self.finish(encodings, &mut results);
        Ok(results)
    }

    /// The length a chunk whose longest input has `tokens` tokens is padded to in `mode`: the
    /// longest itself in [`ExecMode::Eager`], its sequence bucket in [`ExecMode::Graph`].
    pub fn padded_len(&self, tokens: usize, mode: ExecMode) -> usize {
        let pad = match mode {
            ExecMode::Eager => SeqPad::Longest,
            ExecMode::Graph => SeqPad::Bucket,
        };
        pad.len(tokens, self.config.max_seq_length)
    }

    /// Graphs ([`ExecMode::Graph`]: one per shape bucket and load class met) this model has
    /// captured on `slot` (0 for a slot out of range).
    pub fn graph_count(&self, slot: usize) -> usize {
        self.graphs.lock(slot).map_or(0, |g| g.graph_count())
    }

    /// Bytes of device memory the graphs of `slot` use for activations (one set of buffers,
    /// shared by all its buckets; 0 for a slot out of range).
    pub fn graph_bytes(&self, slot: usize) -> usize {
        self.graphs.lock(slot).map_or(0, |g| g.bytes())
    }

    /// The load classes ([`streampool_core::load_class`]) of the graphs this model has captured
    /// on `slot`, ascending, each once.
    pub fn graph_loads(&self, slot: usize) -> Vec<usize> {
        let Ok(graphs) = self.graphs.lock(slot) else { return Vec::new() };
        let mut loads: Vec<usize> =
            graphs.entries.values().flat_map(|e| e.graphs.iter().map(|(load, _)| *load)).collect();
        loads.sort_unstable();
        loads.dedup();
        loads
    }
}
