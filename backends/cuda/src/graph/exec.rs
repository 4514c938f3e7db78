//! [`CudaGraph`]: a captured graph and its executable instance, with what its nodes use.

use std::sync::Arc;

use cudarc::driver::{self as cu, sys};
use streampool_core::BackendError;

use crate::buffer::CudaBuffer;
use crate::context::Shared;
use crate::error;
use crate::pinned::PinnedAlloc;

/// A graph captured on one stream ([`CudaStream::capture`](crate::CudaStream::capture)) and
/// instantiated, ready to be replayed on that stream
/// ([`CudaStream::replay`](crate::CudaStream::replay)).
///
/// The graph's nodes hold raw addresses. It keeps alive the pinned buffers its copies use (taken
/// automatically during capture) and the device buffers handed to [`CudaGraph::retain`]; any
/// other memory it uses must outlive it. It also keeps its device's compiled kernels loaded: a
/// module must not be unloaded while a graph holds its functions, even a graph that no longer
/// replays (its device and stream dropped). Dropping it destroys the graph and its instance (the
/// driver lets replays still in flight finish first) and then lets go of the modules: a graph
/// whose device is gone can have no replay in flight (the device's drop waited for its context),
/// and a live device keeps its modules loaded anyway.
///
/// `Send` but not `Sync`: the driver requires calls on one graph to be serialised, and the
/// graph belongs to one slot's stream anyway.
pub struct CudaGraph {
    graph: sys::CUgraph,
    exec: sys::CUgraphExec,
    /// The stream it was captured on, the only one it replays on.
    stream: Arc<cu::CudaStream>,
    nodes: usize,
    /// Host staging memory the graph's copies read or write.
    pinned: Vec<Arc<PinnedAlloc>>,
    /// Device memory the caller asked the graph to keep alive.
    buffers: Vec<CudaBuffer>,
    /// The device's state, for its loaded modules (the kernels the nodes launch). Dropped after
    /// the graph is destroyed (fields drop after `Drop::drop`).
    _device: Arc<Shared>,
}

// SAFETY: the handles are plain driver objects usable from any thread once the context is bound
// (every call here binds it first); the driver's only rule, serialising calls on one graph, is
// kept by the missing `Sync` (calls take `&self` or `&mut self` of a value one thread owns).
unsafe impl Send for CudaGraph {}

impl CudaGraph {
    /// Instantiate `graph` (taken over: destroyed on failure) captured on `stream`.
    pub(super) fn instantiate(
        graph: sys::CUgraph,
        stream: &Arc<cu::CudaStream>,
        pinned: Vec<Arc<PinnedAlloc>>,
        device: &Arc<Shared>,
    ) -> Result<Self, BackendError> {
        // Built first, with a null instance, so that its `Drop` destroys `graph` on any failure.
        let mut this = Self {
            graph,
            exec: std::ptr::null_mut(),
            stream: stream.clone(),
            nodes: 0,
            pinned,
            buffers: Vec::new(),
            _device: device.clone(),
        };
        let mut nodes = 0usize;
        // SAFETY: `graph` is the live graph cuStreamEndCapture returned; a null node array asks
        // only for the count, written through the valid pointer.
        unsafe { sys::cuGraphGetNodes(graph, std::ptr::null_mut(), &mut nodes) }
            .result()
            .map_err(error::driver("cuGraphGetNodes"))?;
        this.nodes = nodes;
        // SAFETY: `graph` is live; the returned instance is owned by `this` and destroyed once in
        // `Drop`.
        this.exec =
            unsafe { cu::result::graph::instantiate(graph, sys::CUgraphInstantiate_flags(0)) }
                .map_err(error::driver("cuGraphInstantiate"))?;
        // SAFETY: the instance was just created in the stream's context (bound by the caller);
        // uploading only enqueues the setup of its resources on the stream.
        unsafe { cu::result::graph::upload(this.exec, stream.cu_stream()) }
            .map_err(error::driver("cuGraphUpload"))?;
        Ok(this)
    }

    /// Number of nodes (kernels, copies, ...) captured.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Keep `buffer` alive as long as the graph: for device memory the graph reads or writes
    /// that nothing else owns (typically its activations). Its memory is released, in the
    /// stream's order, when the graph drops.
    pub fn retain(&mut self, buffer: &CudaBuffer) {
        if !self.buffers.iter().any(|b| b.same_as(buffer)) {
            self.buffers.push(buffer.clone());
        }
    }

    pub(super) fn exec(&self) -> sys::CUgraphExec {
        self.exec
    }

    pub(super) fn stream(&self) -> &Arc<cu::CudaStream> {
        &self.stream
    }

    pub(super) fn pinned(&self) -> &[Arc<PinnedAlloc>] {
        &self.pinned
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        let ctx = self.stream.context();
        ctx.record_err(error::bind_raw(ctx));
        if !self.exec.is_null() {
            // SAFETY: the instance is owned here and destroyed once; the driver defers freeing
            // it until replays in flight have completed.
            ctx.record_err(unsafe { cu::result::graph::exec_destroy(self.exec) });
        }
        if !self.graph.is_null() {
            // SAFETY: the graph is owned here and destroyed once; the instance no longer needs it.
            ctx.record_err(unsafe { cu::result::graph::destroy(self.graph) });
        }
        // `pinned` and `buffers` drop after this: pinned memory waits for the last replay's
        // event, pooled blocks go back to their stream's free list in stream order.
    }
}

impl std::fmt::Debug for CudaGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaGraph")
            .field("nodes", &self.nodes)
            .field("pinned", &self.pinned.len())
            .field("retained", &self.buffers.len())
            .finish()
    }
}
