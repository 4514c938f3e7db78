//! # streampool-cpu
//!
//! The CPU backend. Each stream is an in-order executor: a worker thread with its own queue.
//! Enqueueing returns at once; events complete when the worker reaches them. It models a GPU queue
//! closely enough that an ordering bug in the core or in an op shows up in CI.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod kernels;
