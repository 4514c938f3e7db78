//! # streampool-metal
//!
//! The Metal backend (feature `metal`, macOS only). **Not implemented yet**: this crate only
//! reserves the place in the workspace so that CI's `cargo check --target aarch64-apple-darwin`
//! step exists from the start. See the README's status table.
#![forbid(unsafe_code)]
