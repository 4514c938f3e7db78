//! Embedding lookups: a row gather, and BERT's summed embeddings followed by layer norm (fused).

use cudarc::driver::LaunchConfig;
use streampool_core::BackendError;

use super::args::{int, invalid, launch, mul, opt_ptr, ptr, row_config, Elem, KArg, Slice};
use super::modules::EMBEDDING;
use crate::stream::CudaStream;

/// `out[t, :] = table[ids[t], :]` for `tokens` u32 ids; `table` is `[vocab, dim]`. An id
/// `>= vocab` gives a row of NaN (the device cannot return an error, and a trap would fail
/// every stream of the context): validate ids on the host where it matters.
#[allow(clippy::too_many_arguments)] // ids, table, out, extents and type
pub fn embedding_gather(
    stream: &CudaStream,
    ids: Slice<'_>,
    tokens: usize,
    table: Slice<'_>,
    vocab: usize,
    dim: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let n = mul("embedding", tokens, dim)?;
    if n == 0 {
        return Ok(());
    }
    let es = elem.size();
    let args = [
        KArg::U64(ptr(stream, ids, tokens, 4, "embedding ids")?),
        KArg::U64(ptr(stream, table, mul("embedding table", vocab, dim)?, es, "embedding table")?),
        KArg::U64(vocab as u64),
        KArg::U64(ptr(stream, out, n, es, "embedding out")?),
        KArg::I32(int("embedding dim", dim)?),
    ];
    let blocks = u32::try_from(tokens).map_err(|_| invalid("embedding: too many tokens"))?;
    let threads = (dim.div_ceil(32) * 32).clamp(32, 256) as u32;
    let config =
        LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
    let name =
        ["embedding_gather_f32", "embedding_gather_f16", "embedding_gather_bf16"][elem as usize];
    // SAFETY: embedding_gather_T(const unsigned* ids, const T* table, u64 rows, T* out, int dim)
    // takes these five arguments; block t reads ids[t] (t < tokens), a table row only when the id
    // is below vocab, and writes out row t: all inside the ranges checked above.
    unsafe { launch(stream, &EMBEDDING, name, config, &args) }
}

/// BERT's embedding tables (of the op's element type) and the layer norm after their sum.
#[derive(Clone, Copy, Debug)]
pub struct BertEmbeddings<'a> {
    /// `[vocab, dim]`.
    pub word: Slice<'a>,
    /// Rows of `word`.
    pub vocab: usize,
    /// `[max_positions, dim]`.
    pub position: Slice<'a>,
    /// Rows of `position`.
    pub max_positions: usize,
    /// `[type_vocab, dim]`.
    pub token_type: Slice<'a>,
    /// Rows of `token_type` (>= 1).
    pub type_vocab: usize,
    /// Layer norm scale, `[dim]`.
    pub gamma: Slice<'a>,
    /// Layer norm shift, `[dim]`.
    pub beta: Slice<'a>,
    /// Layer norm epsilon (1e-12 for BERT).
    pub eps: f32,
    /// Hidden size (at most 8192).
    pub dim: usize,
}

/// `out[b, s] = LayerNorm(word[ids[b, s]] + position[s] + token_type[type_ids[b, s]])` for
/// `batch` sequences of `seq` u32 ids (`type_ids` `None`: all 0), one block per token. A word or
/// type id past its table gives a row of NaN (see [`embedding_gather`]).
#[allow(clippy::too_many_arguments)] // ids, type ids, tables, extents, out and type
pub fn bert_embeddings(
    stream: &CudaStream,
    ids: Slice<'_>,
    type_ids: Option<Slice<'_>>,
    tables: &BertEmbeddings<'_>,
    batch: usize,
    seq: usize,
    out: Slice<'_>,
    elem: Elem,
) -> Result<(), BackendError> {
    let w = tables;
    let dim = w.dim;
    let tokens = mul("bert_embeddings", batch, seq)?;
    if tokens == 0 || dim == 0 {
        return Ok(());
    }
    if seq > w.max_positions {
        return Err(invalid(format!(
            "bert_embeddings: {seq} tokens, {} positions",
            w.max_positions
        )));
    }
    if w.type_vocab == 0 {
        return Err(invalid("bert_embeddings: empty token-type table"));
    }
    let es = elem.size();
    let table = |s, rows, what| ptr(stream, s, mul(what, rows, dim)?, es, what);
    let config = row_config(tokens, dim, "bert_embeddings")?;
    let args = [
        KArg::U64(ptr(stream, ids, tokens, 4, "bert_embeddings ids")?),
        KArg::U64(opt_ptr(stream, type_ids, tokens, 4, "bert_embeddings type_ids")?),
        KArg::U64(table(w.word, w.vocab, "bert_embeddings word")?),
        KArg::U64(w.vocab as u64),
        KArg::U64(table(w.position, seq, "bert_embeddings position")?),
        KArg::U64(table(w.token_type, w.type_vocab, "bert_embeddings token_type")?),
        KArg::U64(w.type_vocab as u64),
        KArg::U64(ptr(stream, w.gamma, dim, es, "bert_embeddings gamma")?),
        KArg::U64(ptr(stream, w.beta, dim, es, "bert_embeddings beta")?),
        KArg::F32(w.eps),
        KArg::U64(ptr(
            stream,
            out,
            mul("bert_embeddings", tokens, dim)?,
            es,
            "bert_embeddings out",
        )?),
        KArg::I32(int("bert_embeddings seq", seq)?),
        KArg::I32(int("bert_embeddings dim", dim)?),
    ];
    let name =
        ["bert_embeddings_f32", "bert_embeddings_f16", "bert_embeddings_bf16"][elem as usize];
    // SAFETY: bert_embeddings_T(const unsigned* ids, const unsigned* type_ids, const T* word,
    // u64 vocab, const T* position, const T* token_type, u64 types, const T* gamma,
    // const T* beta, float eps, T* out, int seq, int dim) takes these thirteen arguments; block t
    // reads ids[t] and type_ids[t], word/type rows only for ids below their table's rows (row 0
    // otherwise), position row t % seq < seq, and writes out row t: all checked above.
    unsafe { launch(stream, &EMBEDDING, name, config, &args) }
}
