//! The stream pool: a fixed number of slots per device, each with its own stream, handed out as
//! RAII leases.
//!
//! # Policy when every slot is taken
//! [`crate::Device::acquire`] waits for a slot to be released, for at most
//! [`PoolConfig::acquire_timeout`], then fails with [`crate::PoolError::Exhausted`]. A slot is
//! never shared: two owners would interleave their work on one queue and race on its lazily
//! created state, which is the bug this crate exists to remove.

mod lease;
pub(crate) mod slots;

use std::time::Duration;

pub(crate) use lease::{current_slot, set_slot_hint as set_lease_hint, slot_hint as lease_hint};
pub use lease::{CurrentGuard, Lease};

/// How a device's stream pool is sized and how long an acquire may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Number of slots (streams). Default 32.
    pub capacity: usize,
    /// How long `acquire` waits for a free slot before [`crate::PoolError::Exhausted`].
    /// Default 30 s.
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { capacity: 32, acquire_timeout: Duration::from_secs(30) }
    }
}

impl PoolConfig {
    /// A config with `capacity` slots and the default timeout.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { capacity, ..Self::default() }
    }

    /// The same config with another acquire timeout.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

/// Concurrency classes for load-dependent plans (the CUDA backend's GEMM kernel choice, graph
/// mode's captures): `streams` busy at once rounded up to a power of two, between 1 and
/// [`LOAD_CLASS_MAX`], so that a handful of plans cover every load.
pub fn load_class(streams: usize) -> usize {
    streams.clamp(1, LOAD_CLASS_MAX).next_power_of_two()
}

/// The largest [`load_class`].
pub const LOAD_CLASS_MAX: usize = 32;

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Number of slots.
    pub capacity: usize,
    /// Slots owned by a lease right now.
    pub in_use: usize,
    /// Most slots ever owned at once.
    pub high_water: usize,
    /// Successful acquires.
    pub acquires: u64,
    /// Acquires that found no free slot and had to wait.
    pub waits: u64,
    /// Acquires that gave up after the timeout.
    pub timeouts: u64,
    /// Slots whose stream has been created.
    pub streams_created: usize,
}
