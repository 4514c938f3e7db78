//! The `streampool` command's subcommands, as a library: the binary (`src/main.rs`) parses the
//! command line into their arguments, and the Python package reuses model resolution
//! ([`fetch::resolve`]), device choice ([`device`]) and the corpus job ([`embed::embed_with`]).
#![forbid(unsafe_code)]

pub mod bench;
pub mod demo;
pub mod device;
pub mod embed;
pub mod fetch;
#[cfg(feature = "hub")]
mod hub;
pub mod load;
pub mod serve;
