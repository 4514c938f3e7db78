//! The device-wide encoder permits ([`EncoderGate`]): a counting semaphore that every op takes
//! before it creates a compute encoder, and gives back after `endEncoding`. With
//! `MetalOptions::serialize_encoders` it has one permit (a device lock), else
//! `MetalOptions::max_encoders`.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The encoder permits of one device (in `Shared`).
///
/// Lock order: a permit is taken *before* a stream's lock (`MetalStream::commands`) and never
/// while one is held, so a thread waiting here holds no stream lock; a permit holder then waits
/// only for its own stream's lock, whose holders never block (they encode, commit, or read a
/// counter). Hence no cycle.
pub(crate) struct EncoderGate {
    /// Permits in all.
    permits: usize,
    /// Permits taken now. Held only to count, never while encoding.
    taken: Mutex<usize>,
    /// Signalled when a permit is given back.
    freed: Condvar,
}

/// One permit: an encoder may be created, used and ended while it lives. Given back on drop.
pub(crate) struct EncoderPermit<'a> {
    gate: &'a EncoderGate,
}

impl EncoderGate {
    /// A gate of `permits` permits (at least 1).
    pub(crate) fn new(permits: usize) -> Self {
        Self { permits: permits.max(1), taken: Mutex::new(0), freed: Condvar::new() }
    }

    fn count(&self) -> MutexGuard<'_, usize> {
        // Poisoned: a thread panicked while counting; the count itself is always consistent.
        self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait (sleeping) for a free permit and take it. The caller holds no stream lock.
    pub(crate) fn acquire(&self) -> EncoderPermit<'_> {
        let mut taken = self.count();
        while *taken >= self.permits {
            taken = self.freed.wait(taken).unwrap_or_else(|p| p.into_inner());
        }
        *taken += 1;
        EncoderPermit { gate: self }
    }
}

impl Drop for EncoderPermit<'_> {
    fn drop(&mut self) {
        let mut taken = self.gate.count();
        *taken = taken.saturating_sub(1);
        drop(taken);
        self.gate.freed.notify_one();
    }
}
