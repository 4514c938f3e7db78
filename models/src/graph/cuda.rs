//! The CUDA part of graph mode: per (slot, model, rows, seq) an [`Entry`] that owns its
//! activation buffers, pinned staging buffers and captured graph (see [`crate::graph`]).

use std::collections::hash_map::{self, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, OnceLock, Weak};

use streampool_core::{load_class, BackendError, DeviceWatch, Stream};
use streampool_cuda::SlotGraphs;
use streampool_cuda::{CaptureError, CudaBackend, CudaGraph, CudaStream, HostElem, PinnedBuffer};
use streampool_tensor::Tensor;

use crate::loading::Encoding;
use crate::minilm::batch::{self, Padded};
use crate::minilm::weights::MiniLmWeights;
use crate::minilm::workspace::{Activations, MiniLmWorkspace};
use crate::minilm::{embeddings, encoder, pooling};
use crate::{MiniLm, ModelError};

type Cuda = CudaBackend;

/// Rows a graph is captured for: a chunk of `n` sequences runs in the smallest bucket that holds
/// it (a chunk has at most [`crate::minilm::max_rows`] of its padded length, a power of two up to
/// [`crate::minilm::MAX_BATCH`] = 512, so an entry holds at most [`crate::minilm::MAX_TOKENS`]
/// tokens' activations).
pub const ROW_BUCKETS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// The row bucket of a chunk of `n` sequences (`n` itself past the largest bucket).
fn rows_bucket(n: usize) -> usize {
    ROW_BUCKETS.iter().copied().find(|&r| r >= n).unwrap_or(n)
}

/// Every graph entry of the process, per slot and keyed by device id (slot numbers are per
/// device). A slot's entries are reached only under its lock, by the thread using its stream.
fn registry() -> &'static SlotGraphs<u64, SlotEntries> {
    static GRAPHS: OnceLock<SlotGraphs<u64, SlotEntries>> = OnceLock::new();
    GRAPHS.get_or_init(SlotGraphs::new)
}

/// One slot's entries of one device, per model.
struct SlotEntries {
    models: Vec<ModelEntries>,
    /// The device: once it is gone (no handle, so no lease: nobody can use its streams), any
    /// thread may free these entries, not only the slot's user.
    device: DeviceWatch,
}

/// One model's entries on one slot, by (rows, seq) bucket.
struct ModelEntries {
    /// The model's weights. Weak: a dropped model's weights are freed at once, its entries at
    /// the next graphed call on the slot. The weak handle keeps the `Arc`'s allocation, so the
    /// address identifying the model is never reused while this lives.
    weights: Weak<MiniLmWeights<Cuda>>,
    buckets: HashMap<(usize, usize), Entry>,
}

impl SlotEntries {
    fn new(device: &streampool_core::Device<Cuda>) -> Self {
        Self { models: Vec::new(), device: device.watch() }
    }

    fn graphs(&self) -> usize {
        self.models.iter().map(|m| graphs_in(&m.buckets)).sum()
    }

    /// The entries of the model with `weights`, after dropping those of dropped models (on the
    /// thread using the slot's stream, in that stream's order, outside any capture).
    fn of(&mut self, weights: &Arc<MiniLmWeights<Cuda>>) -> &mut HashMap<(usize, usize), Entry> {
        self.models.retain(|m| m.weights.strong_count() > 0);
        let same = |m: &ModelEntries| std::ptr::eq(m.weights.as_ptr(), Arc::as_ptr(weights));
        let i = match self.models.iter().position(same) {
            Some(i) => i,
            None => {
                let weights = Arc::downgrade(weights);
                self.models.push(ModelEntries { weights, buckets: HashMap::new() });
                self.models.len() - 1
            }
        };
        &mut self.models[i].buckets
    }
}

/// Graphs of one model's entries on one slot.
fn graphs_in(buckets: &HashMap<(usize, usize), Entry>) -> usize {
    buckets.values().map(|e| e.graphs.len()).sum()
}

/// `f` on `model`'s device's entries of `slot` (created if none), under the slot's lock.
fn with_entries<R>(model: &MiniLm<Cuda>, slot: usize, f: impl FnOnce(&mut SlotEntries) -> R) -> R {
    let new = || Ok::<_, Infallible>(SlotEntries::new(&model.device));
    match registry().with(slot, model.device.id(), new, f) {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// Free the graphs, buffers and pinned staging held for devices that are gone (every handle,
/// lease and model of them dropped), on every slot (waiting for slots in use); returns how many
/// graphs were freed. Each capture does this on its own for the slots not in use; call it to
/// free a dropped device's memory at once. (A dropped model of a live device leaves its
/// entries to the next graphed call on each slot, made by the slot's user, since only that
/// thread may enqueue on the slot's stream.)
pub fn release_dropped_graphs() -> usize {
    release_dropped(true)
}

/// [`release_dropped_graphs`]; with `wait` false, slots in use (the caller's own included) are
/// skipped.
fn release_dropped(wait: bool) -> usize {
    let mut released = 0;
    registry().for_each_slot(wait, |devices| {
        devices.retain(|_, entries| {
            let gone = !entries.device.is_alive();
            if gone {
                released += entries.graphs();
            }
            !gone
        })
    });
    released
}

/// Graphs held for models of the device with id `device` (`streampool_core::Device::id`), on
/// every slot (waiting for slots in use): those of dropped models included until they are freed.
pub fn graphs_of_device(device: u64) -> usize {
    let mut graphs = 0;
    registry().for_each_slot(true, |devices| {
        graphs += devices.get(&device).map_or(0, SlotEntries::graphs);
    });
    graphs
}

/// The captured forwards of `rows` sequences of `seq` tokens on one slot: one graph per load
/// class met so far ([`streampool_core::load_class`] of the forwards running when the call began:
/// the GEMM kernels are chosen for it, see `CudaStream::set_gemm_load`), all on the same
/// buffers (one slot's graphs run one after another, on its stream).
struct Entry {
    /// (load class, graph). Declared first, so dropped before the buffers their nodes use.
    graphs: Vec<(usize, CudaGraph)>,
    /// The entry's own activations (exactly this bucket; never reallocated).
    acts: Activations<Cuda>,
    /// Staging for `acts.ids`, `acts.type_ids`, `acts.mask` and `acts.pooled`.
    ids: PinnedBuffer,
    type_ids: PinnedBuffer,
    mask: PinnedBuffer,
    pooled: PinnedBuffer,
    rows: usize,
    seq: usize,
}

impl Entry {
    /// Allocate the bucket's buffers (no graph yet).
    fn new(
        model: &MiniLm<Cuda>,
        stream: &CudaStream,
        (rows, seq): (usize, usize),
    ) -> Result<Self, ModelError> {
        let c = &model.config.bert;
        let shape = [rows, seq, c.hidden_size, c.intermediate_size];
        let acts =
            MiniLmWorkspace::<Cuda>::default().views(stream, shape, model.precision.dtype())?;
        let backend = model.device.backend();
        let pin = |t: &Tensor<Cuda>| PinnedBuffer::new(backend, t.buffer().len());
        let (ids, type_ids) = (pin(&acts.ids)?, pin(&acts.type_ids)?);
        let (mask, pooled) = (pin(&acts.mask)?, pin(&acts.pooled)?);
        Ok(Self { graphs: Vec::new(), acts, ids, type_ids, mask, pooled, rows, seq })
    }

    /// The index in `graphs` of the graph for load class `load`: captured on first use (the stream's GEMMs already
    /// planned for that load) after one eager run of the forward on the entry's buffers
    /// (kernels loaded, cuBLAS plans made).
    fn graph(
        &mut self,
        model: &MiniLm<Cuda>,
        stream: &CudaStream,
        load: usize,
    ) -> Result<usize, ModelError> {
        if let Some(i) = self.graphs.iter().position(|(l, _)| *l == load) {
            return Ok(i);
        }
        let c = &model.config.bert;
        let Self { acts, ids, type_ids, mask, pooled, .. } = &*self;
        // Warm-up input: every token a (zero) [PAD] id, attended (overwritten by each call).
        mask.lock()?.as_mut_slice::<f32>().fill(1.0);
        let forward = || -> Result<(), ModelError> {
            stream.copy_from_pinned(acts.ids.buffer(), ids)?;
            stream.copy_from_pinned(acts.type_ids.buffer(), type_ids)?;
            stream.copy_from_pinned(acts.mask.buffer(), mask)?;
            embeddings::embed(stream, &model.weights.embeddings, acts)?;
            for layer in &model.weights.layers {
                encoder::layer(stream, layer, c.num_attention_heads, model.precision.math(), acts)?;
            }
            pooling::pool(stream, acts)?;
            stream.copy_to_pinned(acts.pooled.buffer(), pooled)?;
            Ok(())
        };
        // A capture is rare (once per slot, bucket and load class): the moment to free what
        // dropped devices left on the other slots (this one is locked by the caller: skipped).
        release_dropped(false);
        forward()?;
        stream.synchronize()?;
        let (graph, ()) = stream.capture_retrying(forward).map_err(capture_error)?;
        self.graphs.push((load, graph));
        Ok(self.graphs.len() - 1)
    }

    /// Stage `chunk` (of at most `rows` sequences padded to `seq`), replay, and return its
    /// pooled rows in chunk order.
    fn run(
        &self,
        stream: &CudaStream,
        graph: &CudaGraph,
        chunk: &Padded,
        hidden: usize,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        debug_assert_eq!(chunk.seq, self.seq);
        debug_assert_eq!(self.acts.pooled.shape(), [self.rows, hidden]);
        let n = chunk.order.len();
        stage(&self.ids, &chunk.ids, n, self.rows)?;
        stage(&self.type_ids, &chunk.type_ids, n, self.rows)?;
        stage(&self.mask, &chunk.mask, n, self.rows)?;
        stream.replay(graph)?;
        // Waits for the replay.
        let out = self.pooled.lock()?;
        let dtype = self.acts.pooled.dtype();
        let bytes = &out.as_slice::<u8>()[..self.rows * hidden * dtype.size()];
        let all = pooling::widen(dtype, bytes);
        Ok(all.chunks_exact(hidden).take(n).map(<[f32]>::to_vec).collect())
    }
}

/// Write `src` (`n` padded rows) into `buf`'s first `rows` rows; the rows past `n` repeat the
/// first (a real sequence, so every row computes finite values; their results are dropped).
fn stage<T: HostElem>(
    buf: &PinnedBuffer,
    src: &[T],
    n: usize,
    rows: usize,
) -> Result<(), BackendError> {
    let row = src.len() / n;
    let mut guard = buf.lock()?;
    let dst = guard.as_mut_slice::<T>();
    let (head, tail) = dst[..rows * row].split_at_mut(src.len());
    head.copy_from_slice(src);
    for r in tail.chunks_exact_mut(row) {
        r.copy_from_slice(&src[..row]);
    }
    Ok(())
}

/// A failed capture as a model error.
fn capture_error(e: CaptureError<ModelError>) -> ModelError {
    match e {
        CaptureError::Body(e) => e,
        CaptureError::Invalidated(e) | CaptureError::Driver(e) => e.into(),
        e => BackendError::InvalidArgument(e.to_string()).into(),
    }
}

/// [`crate::graph::ExecMode::Graph`] on CUDA.
pub(super) fn embed(
    model: &MiniLm<Cuda>,
    stream: &CudaStream,
    encodings: &[Encoding],
) -> Result<Vec<Vec<f32>>, ModelError> {
    batch::validate(encodings, &model.config.bert, model.config.max_seq_length)?;
    let (slot, capacity) = (stream.slot(), model.device.capacity());
    if slot >= capacity {
        return Err(ModelError::SlotOutOfRange { slot, capacity });
    }
    let chunks = batch::chunks(encodings, model.config.max_seq_length);
    let hidden = model.dim();
    let running = model.device.enter();
    let load = load_class(running.load());
    stream.set_gemm_load(load);
    let run = |entries: &mut SlotEntries| -> Result<Vec<Vec<f32>>, ModelError> {
        let buckets = entries.of(&model.weights);
        let mut results = vec![Vec::new(); encodings.len()];
        for chunk in &chunks {
            let entry = match buckets.entry((rows_bucket(chunk.order.len()), chunk.seq)) {
                hash_map::Entry::Occupied(e) => e.into_mut(),
                hash_map::Entry::Vacant(e) => {
                    let key = *e.key();
                    e.insert(Entry::new(model, stream, key)?)
                }
            };
            let i = entry.graph(model, stream, load)?;
            let graph = &entry.graphs[i].1;
            for (&i, row) in chunk.order.iter().zip(entry.run(stream, graph, chunk, hidden)?) {
                results[i] = row;
            }
        }
        Ok(results)
    };
    with_entries(model, slot, run)
}

impl MiniLm<CudaBackend> {
    /// Graphs ([`crate::graph::ExecMode::Graph`]: one per shape bucket and load class met) this
    /// model has captured on `slot`.
    pub fn graph_count(&self, slot: usize) -> usize {
        with_entries(self, slot, |entries| graphs_in(entries.of(&self.weights)))
    }

    /// The load classes ([`streampool_core::load_class`]) of the graphs this model has captured on
    /// `slot`, ascending, each once.
    pub fn graph_loads(&self, slot: usize) -> Vec<usize> {
        with_entries(self, slot, |entries| {
            let mut loads: Vec<usize> = entries
                .of(&self.weights)
                .values()
                .flat_map(|e| e.graphs.iter().map(|(load, _)| *load))
                .collect();
            loads.sort_unstable();
            loads.dedup();
            loads
        })
    }
}
