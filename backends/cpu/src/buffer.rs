//! Host memory standing in for device memory.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A CPU "device" buffer: 4-byte aligned host memory shared by handles. Work items lock it for
/// the duration of one op; the lock is per buffer (never global), and uncontended unless two
/// streams touch the same buffer at once.
#[derive(Clone, Debug)]
pub struct CpuBuffer {
    /// Storage as u32 words so that f32, u32 and 16-bit views are aligned. Guards this buffer's
    /// contents only.
    words: Arc<RwLock<Box<[u32]>>>,
    len: usize,
}

impl CpuBuffer {
    /// A zeroed buffer of `bytes` bytes.
    pub fn zeroed(bytes: usize) -> Self {
        let words = vec![0u32; bytes.div_ceil(4)].into_boxed_slice();
        Self { words: Arc::new(RwLock::new(words)), len: bytes }
    }

    /// A buffer holding a copy of `data`.
    pub fn from_slice<T: bytemuck::Pod>(data: &[T]) -> Self {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = Self::zeroed(bytes.len());
        buffer.write().as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        buffer
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether two handles refer to the same memory.
    pub fn same_as(&self, other: &CpuBuffer) -> bool {
        Arc::ptr_eq(&self.words, &other.words)
    }

    /// Shared access to the contents (for reading inputs inside a work item).
    pub fn read(&self) -> BufferRead<'_> {
        BufferRead { guard: self.words.read().unwrap_or_else(|p| p.into_inner()), len: self.len }
    }

    /// Exclusive access to the contents (for writing outputs inside a work item).
    pub fn write(&self) -> BufferWrite<'_> {
        BufferWrite { guard: self.words.write().unwrap_or_else(|p| p.into_inner()), len: self.len }
    }
}

/// Read access to a [`CpuBuffer`].
pub struct BufferRead<'a> {
    guard: RwLockReadGuard<'a, Box<[u32]>>,
    len: usize,
}

/// Write access to a [`CpuBuffer`].
pub struct BufferWrite<'a> {
    guard: RwLockWriteGuard<'a, Box<[u32]>>,
    len: usize,
}

macro_rules! typed_views {
    ($($ty:ty => $get:ident),*) => {$(
        #[doc = concat!("The contents as `", stringify!($ty), "` (trailing partial element dropped).")]
        pub fn $get(&self) -> &[$ty] {
            let all: &[$ty] = bytemuck::cast_slice(&self.guard[..]);
            &all[..self.len / std::mem::size_of::<$ty>()]
        }
    )*};
}
macro_rules! typed_views_mut {
    ($($ty:ty => $get:ident),*) => {$(
        #[doc = concat!("The contents as mutable `", stringify!($ty), "`.")]
        pub fn $get(&mut self) -> &mut [$ty] {
            let len = self.len / std::mem::size_of::<$ty>();
            let all: &mut [$ty] = bytemuck::cast_slice_mut(&mut self.guard[..]);
            &mut all[..len]
        }
    )*};
}

impl BufferRead<'_> {
    typed_views!(u8 => as_bytes, u16 => as_u16, u32 => as_u32, f32 => as_f32);
}

impl BufferWrite<'_> {
    typed_views!(u8 => as_bytes, u16 => as_u16, u32 => as_u32, f32 => as_f32);
    typed_views_mut!(u8 => as_bytes_mut, u16 => as_u16_mut, u32 => as_u32_mut, f32 => as_f32_mut);
}
