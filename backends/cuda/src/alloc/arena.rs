//! One stream's share of the caching allocator: its free lists, spare events and counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::{self as cu, sys};
use streampool_core::BackendError;

use super::registry::Registry;
use super::size_class;
use crate::buffer::{raw_alloc, CudaBuffer};
use crate::error;

/// A cached block: free memory, reusable once `ready` (and `extra`) have completed.
struct Block {
    ptr: sys::CUdeviceptr,
    /// Recorded on the arena's stream when the block was freed.
    ready: Option<cu::CudaEvent>,
    /// Recorded on the other streams that used the block ([`CudaBuffer::record_use`]).
    extra: Vec<cu::CudaEvent>,
}

impl Block {
    /// Whether every event has completed (never blocks). An error counts as "not ready".
    fn is_ready(&self) -> bool {
        self.ready.iter().chain(&self.extra).all(|e| e.try_is_complete().unwrap_or(false))
    }
}

/// What the arena's lock guards.
#[derive(Default)]
struct Cache {
    /// Free blocks by size class; within a class, the most recently freed last.
    blocks: BTreeMap<usize, Vec<Block>>,
    /// Events of blocks handed out again, reused for the next frees (no cuEventCreate once warm).
    spare_events: Vec<cu::CudaEvent>,
    /// Whether the stream is being captured into a graph: a free's event recorded now would
    /// join the capture, so frees wait in `deferred` until the capture ends.
    capturing: bool,
    /// Blocks freed during a capture: (pointer, size class, other streams that used it).
    deferred: Vec<(sys::CUdeviceptr, usize, Vec<Arc<cu::CudaStream>>)>,
}

/// The free lists and counters of one stream.
pub(crate) struct Arena {
    slot: usize,
    stream: Arc<cu::CudaStream>,
    registry: Arc<Registry>,
    /// Guards this stream's free lists and spare events. Taken by this stream's allocations and
    /// by frees of its blocks (from whichever thread drops the last handle), and briefly by
    /// another stream's allocation that found its own list empty. Never held together with
    /// another arena's lock, nor across a call that can block on the device.
    cache: Mutex<Cache>,
    /// Bytes (size classes) handed out by this arena and not yet freed. Relaxed: statistics.
    in_use: AtomicUsize,
    /// Highest `in_use` seen. Relaxed: statistics.
    peak: AtomicUsize,
    /// Bytes in this arena's free lists. Updated under `cache`; read without it (Relaxed).
    cached: AtomicUsize,
    /// Allocations served from this arena's own list, from another's, and by `cuMemAlloc`.
    hits: AtomicUsize,
    steals: AtomicUsize,
    mallocs: AtomicUsize,
}

impl Arena {
    pub(crate) fn new(
        slot: usize,
        stream: Arc<cu::CudaStream>,
        registry: &Arc<Registry>,
    ) -> Arc<Self> {
        let arena = Arc::new(Self {
            slot,
            stream,
            registry: registry.clone(),
            cache: Mutex::new(Cache::default()),
            in_use: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            hits: AtomicUsize::new(0),
            steals: AtomicUsize::new(0),
            mallocs: AtomicUsize::new(0),
        });
        registry.register(&arena);
        arena
    }

    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    pub(crate) fn stream(&self) -> &Arc<cu::CudaStream> {
        &self.stream
    }

    pub(crate) fn context(&self) -> &Arc<cu::CudaContext> {
        self.stream.context()
    }

    /// Poisoning is ignored: the lists stay consistent at every step a panic could interrupt.
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A buffer of `bytes` for use on this arena's stream.
    pub(crate) fn alloc(self: &Arc<Self>, bytes: usize) -> Result<CudaBuffer, BackendError> {
        if bytes == 0 {
            return CudaBuffer::alloc(self.context(), 0);
        }
        let class = size_class(bytes);
        let ptr = match self.take_own(class)? {
            Some(ptr) => {
                self.hits.fetch_add(1, Relaxed);
                ptr
            }
            None => match self.registry.steal(class, self) {
                Some(ptr) => {
                    self.steals.fetch_add(1, Relaxed);
                    ptr
                }
                None => {
                    self.mallocs.fetch_add(1, Relaxed);
                    self.malloc(class)?
                }
            },
        };
        let now = self.in_use.fetch_add(class, Relaxed) + class;
        self.peak.fetch_max(now, Relaxed);
        self.registry.count_in_use(class as isize);
        Ok(CudaBuffer::pooled(ptr, bytes, class, self))
    }

    /// A block of `class` from this stream's own list: no wait for its own event (stream order);
    /// the stream waits on the device for the events of other streams that used it.
    fn take_own(&self, class: usize) -> Result<Option<sys::CUdeviceptr>, BackendError> {
        let mut cache = self.lock();
        let Some(block) = cache.blocks.get_mut(&class).and_then(Vec::pop) else {
            return Ok(None);
        };
        self.cached.fetch_sub(class, Relaxed);
        self.registry.count_cached(-(class as isize));
        let Block { ptr, ready, extra } = block;
        let mut result = Ok(Some(ptr));
        for event in &extra {
            if let Err(e) = self.stream.wait(event) {
                result = Err(error::driver("cuStreamWaitEvent")(e));
            }
        }
        cache.spare_events.extend(ready);
        cache.spare_events.extend(extra);
        if result.is_err() {
            // The block cannot be ordered safely: keep it out of circulation until released.
            drop(cache);
            self.release(vec![ptr]);
        }
        result
    }

    /// A block of `class` from this arena for another stream: only one whose events have all
    /// completed, so no work of ours (or of the streams that used it) can still touch it.
    pub(super) fn take_ready(&self, class: usize) -> Option<sys::CUdeviceptr> {
        let mut cache = self.lock();
        let list = cache.blocks.get_mut(&class)?;
        let i = list.iter().position(Block::is_ready)?;
        let Block { ptr, ready, extra } = list.swap_remove(i);
        cache.spare_events.extend(ready);
        cache.spare_events.extend(extra);
        self.cached.fetch_sub(class, Relaxed);
        self.registry.count_cached(-(class as isize));
        Some(ptr)
    }

    /// `cuMemAlloc`, retried once after releasing every cached block of the device on OOM.
    fn malloc(&self, class: usize) -> Result<sys::CUdeviceptr, BackendError> {
        match raw_alloc(self.context(), class) {
            Err(BackendError::OutOfMemory { .. }) => {
                self.registry.release_all();
                raw_alloc(self.context(), class)
            }
            other => other,
        }
    }

    /// The stream's capture begins (called by the capturing thread before
    /// `cuStreamBeginCapture`): frees from now on are deferred to [`Arena::end_capture`].
    pub(crate) fn begin_capture(&self) {
        self.lock().capturing = true;
    }

    /// The stream's capture has ended (called by the capturing thread after
    /// `cuStreamEndCapture`): the frees deferred meanwhile record their events now, outside it.
    pub(crate) fn end_capture(&self) {
        let deferred = {
            let mut cache = self.lock();
            cache.capturing = false;
            std::mem::take(&mut cache.deferred)
        };
        for (ptr, class, uses) in deferred {
            self.give_back(ptr, class, uses);
        }
    }

    /// Called when the last handle of a block of this arena drops, from any thread: record the
    /// events that say when its work is done and put it on the free list; while the stream is
    /// being captured, defer that to the capture's end (an event recorded on a capturing stream
    /// would become part of the graph). Never blocks on the device.
    pub(crate) fn give_back(
        &self,
        ptr: sys::CUdeviceptr,
        class: usize,
        uses: Vec<Arc<cu::CudaStream>>,
    ) {
        let mut cache = self.lock();
        if cache.capturing {
            cache.deferred.push((ptr, class, uses));
            return;
        }
        let mut record = |stream: &Arc<cu::CudaStream>| -> Option<cu::CudaEvent> {
            let event = match cache.spare_events.pop() {
                Some(e) => e,
                None => self.context().new_event(None).ok()?,
            };
            event.record(stream).ok()?;
            Some(event)
        };
        let ready = record(&self.stream);
        let extra: Option<Vec<_>> = uses.iter().map(&mut record).collect();
        self.in_use.fetch_sub(class, Relaxed);
        self.registry.count_in_use(-(class as isize));
        match (ready, extra) {
            (Some(ready), Some(extra)) => {
                let block = Block { ptr, ready: Some(ready), extra };
                cache.blocks.entry(class).or_default().push(block);
                self.cached.fetch_add(class, Relaxed);
                self.registry.count_cached(class as isize);
            }
            _ => {
                // No event could be made or recorded (a broken context): free it the slow way.
                drop(cache);
                self.release(vec![ptr]);
            }
        }
    }

    /// Remove every cached block (for [`Registry::release_all`]); the caller frees them.
    pub(super) fn drain(&self) -> Vec<sys::CUdeviceptr> {
        let mut cache = self.lock();
        let mut ptrs = Vec::new();
        for (class, blocks) in std::mem::take(&mut cache.blocks) {
            self.cached.fetch_sub(class * blocks.len(), Relaxed);
            self.registry.count_cached(-((class * blocks.len()) as isize));
            for Block { ptr, ready, extra } in blocks {
                ptrs.push(ptr);
                cache.spare_events.extend(ready);
                cache.spare_events.extend(extra);
            }
        }
        ptrs
    }

    /// Free blocks after the whole device is idle (no stream can still use them).
    pub(super) fn release(&self, ptrs: Vec<sys::CUdeviceptr>) {
        let ctx = self.context();
        if ptrs.is_empty() {
            return;
        }
        // If the wait fails, the blocks are leaked rather than freed while possibly in use.
        if !error::idle_before_free(ctx) {
            return;
        }
        for ptr in ptrs {
            // SAFETY: each block came from cuMemAlloc in this context, was removed from the
            // lists (so is freed once), and the device is idle after the synchronisation.
            ctx.record_err(unsafe { cu::result::free_sync(ptr) });
        }
    }

    pub(super) fn stats(&self) -> super::StreamMemoryStats {
        super::StreamMemoryStats {
            slot: self.slot,
            in_use: self.in_use.load(Relaxed),
            peak: self.peak.load(Relaxed),
            cached: self.cached.load(Relaxed),
            hits: self.hits.load(Relaxed),
            steals: self.steals.load(Relaxed),
            mallocs: self.mallocs.load(Relaxed),
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // The stream and every buffer of this arena are gone: free what is cached.
        let ptrs = self.drain();
        self.release(ptrs);
    }
}
