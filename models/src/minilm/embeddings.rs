//! MiniLM's embedding block: word + position + token-type embeddings, then layer norm.

use streampool_tensor::{BertEmbeddingTables, Ops};

use super::weights::EmbeddingWeights;
use super::workspace::Activations;
use crate::ModelError;

/// `a.hidden = LayerNorm(word[a.ids] + position + token_type[a.type_ids])`.
pub(crate) fn embed<B: Ops>(
    stream: &B::Stream,
    w: &EmbeddingWeights<B>,
    a: &Activations<B>,
) -> Result<(), ModelError> {
    let tables = BertEmbeddingTables {
        word: &w.word,
        position: &w.position,
        token_type: &w.token_type,
        norm: w.norm.as_op(),
    };
    Ok(B::bert_embeddings(stream, &a.ids, Some(&a.type_ids), tables, &a.hidden)?)
}
