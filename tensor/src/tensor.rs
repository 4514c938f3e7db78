//! [`Tensor`]: a typed, shaped view of a device buffer. Views share the buffer; only
//! [`Tensor::contiguous`] and the constructors allocate.

use streampool_core::{Backend, Device, Stream};

use crate::{DType, Layout, OpError, Ops, ViewError};

/// A view of device memory: a buffer handle, where the elements are in it, and their type.
///
/// Cloning gives another handle to the same buffer (no copy). Ops read and write tensors on a
/// stream, in that stream's order; a tensor used on two streams needs an event between them.
///
/// ```
/// use streampool_core::{Device, PoolConfig};
/// use streampool_cpu::CpuBackend;
/// use streampool_tensor::Tensor;
///
/// let device = Device::new(CpuBackend::new(), PoolConfig::default());
/// let lease = device.acquire()?;
/// let t = Tensor::from_host(&device, lease.stream(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let tt = t.transpose(0, 1)?; // a view: no copy
/// assert!(!tt.is_contiguous());
/// assert_eq!(tt.to_host(lease.stream())?, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Tensor<B: Backend> {
    buffer: B::Buffer,
    layout: Layout,
    dtype: DType,
}

impl<B: Backend> Clone for Tensor<B> {
    fn clone(&self) -> Self {
        Self { buffer: self.buffer.clone(), layout: self.layout, dtype: self.dtype }
    }
}

impl<B: Backend> std::fmt::Debug for Tensor<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor").field("dtype", &self.dtype).field("layout", &self.layout).finish()
    }
}

impl<B: Backend> Tensor<B> {
    /// A tensor over `buffer`, after checking that `layout` lies inside it.
    pub fn from_parts(buffer: B::Buffer, layout: Layout, dtype: DType) -> Result<Self, ViewError> {
        let needed = layout.end() * dtype.size();
        let available = B::buffer_len(&buffer);
        if needed > available {
            return Err(ViewError::OutOfBounds { needed, available });
        }
        Ok(Self { buffer, layout, dtype })
    }

    /// A new contiguous tensor on `device`; contents unspecified.
    pub fn empty(device: &Device<B>, shape: &[usize], dtype: DType) -> Result<Self, OpError> {
        let layout = Layout::contiguous(shape)?;
        let buffer = device.alloc(layout.numel() * dtype.size())?;
        Ok(Self { buffer, layout, dtype })
    }

    /// A new f32 tensor holding `data` (row-major), uploaded on `stream`.
    pub fn from_host(
        device: &Device<B>,
        stream: &B::Stream,
        data: &[f32],
        shape: &[usize],
    ) -> Result<Self, OpError> {
        let t = Self::empty(device, shape, DType::F32)?;
        t.write_host(stream, data)?;
        Ok(t)
    }

    /// A new u32 tensor (token ids) holding `data`, uploaded on `stream`.
    pub fn from_host_u32(
        device: &Device<B>,
        stream: &B::Stream,
        data: &[u32],
        shape: &[usize],
    ) -> Result<Self, OpError> {
        let t = Self::empty(device, shape, DType::U32)?;
        t.write_host_u32(stream, data)?;
        Ok(t)
    }

    /// Enqueue on `stream` a copy of `data` into this contiguous f32 tensor (data is taken at
    /// the call).
    pub fn write_host(&self, stream: &B::Stream, data: &[f32]) -> Result<(), OpError> {
        self.check_host("write_host", DType::F32, data.len())?;
        Ok(stream.write(&self.buffer, self.byte_offset(), as_bytes_f32(data))?)
    }

    /// A new tensor of `dtype` holding `bytes` (row-major elements of `dtype`, native byte
    /// order; e.g. f16 / bf16 weights converted on the host), uploaded on `stream`.
    pub fn from_host_bytes(
        device: &Device<B>,
        stream: &B::Stream,
        dtype: DType,
        bytes: &[u8],
        shape: &[usize],
    ) -> Result<Self, OpError> {
        let t = Self::empty(device, shape, dtype)?;
        if bytes.len() != t.numel() * dtype.size() {
            return Err(OpError::HostLength {
                expected: t.numel(),
                found: bytes.len() / dtype.size(),
            });
        }
        stream.write(&t.buffer, 0, bytes)?;
        Ok(t)
    }

    /// Enqueue on `stream` a copy of `data` into this contiguous u32 tensor.
    pub fn write_host_u32(&self, stream: &B::Stream, data: &[u32]) -> Result<(), OpError> {
        self.check_host("write_host_u32", DType::U32, data.len())?;
        Ok(stream.write(&self.buffer, self.byte_offset(), as_bytes_u32(data))?)
    }

    fn check_host(&self, op: &'static str, dtype: DType, len: usize) -> Result<(), OpError> {
        if self.dtype != dtype {
            return Err(OpError::DType {
                op,
                operand: "tensor",
                expected: dtype,
                found: self.dtype,
            });
        }
        if !self.is_contiguous() {
            return Err(OpError::NotContiguous { op, operand: "tensor" });
        }
        if len != self.numel() {
            return Err(OpError::HostLength { expected: self.numel(), found: len });
        }
        Ok(())
    }

    fn byte_offset(&self) -> usize {
        self.layout.offset() * self.dtype.size()
    }

    /// The buffer this tensor views.
    pub fn buffer(&self) -> &B::Buffer {
        &self.buffer
    }

    /// Shape, strides and offset.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Whether the elements are dense and row-major.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    fn with_layout(&self, layout: Layout) -> Self {
        Self { buffer: self.buffer.clone(), layout, dtype: self.dtype }
    }

    /// The same elements with another shape (no copy); [`ViewError::NotContiguous`] for a
    /// strided view.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self, ViewError> {
        Ok(self.with_layout(self.layout.reshape(shape)?))
    }

    /// Dimensions reordered (no copy): dimension `i` of the result is `dims[i]` of `self`.
    pub fn permute(&self, dims: &[usize]) -> Result<Self, ViewError> {
        Ok(self.with_layout(self.layout.permute(dims)?))
    }

    /// Dimensions `a` and `b` swapped (no copy).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self, ViewError> {
        Ok(self.with_layout(self.layout.transpose(a, b)?))
    }

    /// Indices `start..start + len` of dimension `dim` (no copy).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self, ViewError> {
        Ok(self.with_layout(self.layout.narrow(dim, start, len)?))
    }
}

impl<B: Ops> Tensor<B> {
    /// A contiguous tensor with this one's elements: `self` when already contiguous (same
    /// buffer), else a copy into a new buffer, enqueued on `stream`.
    pub fn contiguous(&self, stream: &B::Stream) -> Result<Self, OpError> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let layout = Layout::contiguous(self.shape())?;
        let buffer = B::stream_alloc(stream, layout.numel() * self.dtype.size())?;
        let out = Self { buffer, layout, dtype: self.dtype };
        B::copy_strided(stream, self, &out)?;
        Ok(out)
    }

    /// Wait for `stream`'s earlier work, then copy this f32 tensor to the host (row-major;
    /// strided views are gathered on `stream` first).
    pub fn to_host(&self, stream: &B::Stream) -> Result<Vec<f32>, OpError> {
        let mut out = vec![0f32; self.numel()];
        self.read_host(stream, DType::F32, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    /// [`Tensor::to_host`] for u32 tensors.
    pub fn to_host_u32(&self, stream: &B::Stream) -> Result<Vec<u32>, OpError> {
        let mut out = vec![0u32; self.numel()];
        self.read_host(stream, DType::U32, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    /// Reads this tensor into `bytes` (exactly its size), gathering a strided view first.
    pub fn read_host(
        &self,
        stream: &B::Stream,
        dtype: DType,
        bytes: &mut [u8],
    ) -> Result<(), OpError> {
        if self.dtype != dtype {
            return Err(OpError::DType {
                op: "to_host",
                operand: "tensor",
                expected: dtype,
                found: self.dtype,
            });
        }
        if bytes.len() != self.numel() * dtype.size() {
            return Err(OpError::HostLength {
                expected: self.numel(),
                found: bytes.len() / dtype.size(),
            });
        }
        let dense = self.contiguous(stream)?;
        stream.read(&dense.buffer, dense.byte_offset(), bytes)?;
        Ok(())
    }
}

fn as_bytes_f32(data: &[f32]) -> &[u8] {
    bytemuck::cast_slice(data)
}

fn as_bytes_u32(data: &[u32]) -> &[u8] {
    bytemuck::cast_slice(data)
}
