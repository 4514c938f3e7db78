//! Models: MiniLM sentence embeddings, MLP, Conv1D
