//! Graph mode: MiniLM's forward captured once as a CUDA graph per (slot, model, shape bucket)
//! and replayed, with inputs and outputs staged through pinned host memory.
//!
//! [`ExecMode`] picks the path per call, through [`MiniLm::embed_encodings_mode`] (and
//! [`MiniLm::embed_mode`]), which compile for every backend: code that does not know its backend
//! (the bench, the CLI) asks for [`ExecMode::Graph`] and gets [`ModelError::Unsupported`] where
//! there are no CUDA graphs (another backend, or a build without the `cuda` feature).
//!
//! # How a graphed call runs (CUDA)
//!
//! The batch is validated, sorted by length and cut into chunks exactly as in eager mode, and
//! each chunk is padded to its sequence bucket (a multiple of [`crate::minilm::SEQ_BUCKET`], at
//! most `max_seq_length`), as in eager mode, and to a row bucket (a power of two from 1 to 512 rows, at most
//! [`crate::minilm::MAX_TOKENS`] padded tokens; extra rows repeat the first sequence and are
//! dropped). Per (slot, model, rows, seq) there is
//! one graph entry, which owns
//!
//! - its own activation buffers, allocated once for exactly that bucket (never the slot's eager
//!   workspace, which grows and reallocates: a captured graph holds raw addresses);
//! - pinned buffers for the ids, segment ids, mask and pooled output;
//! - the `streampool_cuda::CudaGraph` of [copy ids, segment ids, mask from pinned memory →
//!   embeddings → 6 encoder layers → pooling and normalisation → copy pooled rows to pinned
//!   memory].
//!
//! The first use of a bucket on a slot runs that forward eagerly once on the entry's buffers
//! (kernels compiled and loaded, cuBLAS settled), then captures it. Every call writes the
//! padded inputs into the pinned buffers, replays the graph, and reads the output buffer (its
//! lock waits for the replay). Entries live in a `streampool_cuda::SlotGraphs`, so a slot's
//! graphs are only ever touched under that slot's lock, by the thread using the slot's stream.
//! Entries of a model that has been dropped are freed by the next graphed call on that slot of
//! that device; those of a device that is gone, by the next capture anywhere (on every slot not
//! in use at that moment) or by `release_dropped_graphs` (CUDA builds).

use std::any::Any;

use streampool_tensor::Ops;

use crate::loading::Encoding;
use crate::{MiniLm, ModelError};

#[cfg(feature = "cuda")]
mod cuda;

#[cfg(feature = "cuda")]
pub use cuda::{graphs_of_device, release_dropped_graphs, ROW_BUCKETS};

/// How a model call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecMode {
    /// Op by op, on the slot's workspace (every backend).
    #[default]
    Eager,
    /// Replays of a CUDA graph captured once per (slot, model, shape bucket), inputs and outputs
    /// staged through pinned memory (the CUDA backend only).
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

    /// Whether backend `B` runs this mode in this build: [`ExecMode::Eager`] everywhere,
    /// [`ExecMode::Graph`] on the CUDA backend of a build with the `cuda` feature.
    pub fn supported_on<B: Ops>(self) -> bool {
        match self {
            Self::Eager => true,
            #[cfg(feature = "cuda")]
            Self::Graph => {
                std::any::TypeId::of::<B>()
                    == std::any::TypeId::of::<streampool_cuda::CudaBackend>()
            }
            #[cfg(not(feature = "cuda"))]
            Self::Graph => false,
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

/// The error of [`ExecMode::Graph`] where it cannot run.
fn unsupported() -> ModelError {
    ModelError::Unsupported {
        what: "graph mode".into(),
        reason: if cfg!(feature = "cuda") {
            "graph mode needs the CUDA backend".into()
        } else {
            "graph mode needs the CUDA backend (build with the `cuda` feature)".into()
        },
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
    /// [`MiniLm::embed_encodings`]; [`ExecMode::Graph`] replays CUDA graphs (see
    /// [`crate::graph`]) and gives the same results (within float rounding of the GEMMs'
    /// shapes), or [`ModelError::Unsupported`] on a backend other than CUDA. Blocks until the
    /// results are on the host.
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

    /// [`ExecMode::Graph`]: the CUDA path when `B` is the CUDA backend.
    fn embed_graphed(
        &self,
        stream: &B::Stream,
        encodings: &[Encoding],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let (model, stream): (&dyn Any, &dyn Any) = (self, stream);
        #[cfg(feature = "cuda")]
        if let (Some(model), Some(stream)) = (
            model.downcast_ref::<MiniLm<streampool_cuda::CudaBackend>>(),
            stream.downcast_ref::<streampool_cuda::CudaStream>(),
        ) {
            return cuda::embed(model, stream, encodings);
        }
        let _ = (model, stream, encodings);
        Err(unsupported())
    }
}
