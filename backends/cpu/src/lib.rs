//! CPU backend: each stream is an in-order executor thread
