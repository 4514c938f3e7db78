//! Tensors and ops submitted to streams
