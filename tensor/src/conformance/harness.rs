//! What every case of the suite uses: a stream of the device, deterministic data stored as the
//! case's element type, uploads and downloads in that type, and the comparison with the f64
//! reference at that type's tolerance.

use streampool_core::testing::rand;
use streampool_core::{Device, Lease};

use crate::{DType, Ops, Tensor};

/// Largest scaled error `|got - want| / (1 + |want|)` accepted for results of `dtype`: the
/// rounding of f32 arithmetic for f32 (the references are exact f64), that of the storage type
/// for f16 (11-bit significand) and bf16 (8-bit).
pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-4,
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        DType::U32 => 0.0,
    }
}

/// `v` as `dtype` stores it (f32 for f32 and u32).
pub fn round(v: &[f32], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F16 => v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect(),
        DType::BF16 => v.iter().map(|&x| half::bf16::from_f32(x).to_f32()).collect(),
        DType::F32 | DType::U32 => v.to_vec(),
    }
}

/// The bytes of `v` stored as float type `dtype` (native byte order).
fn to_bytes(v: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F16 => v.iter().flat_map(|&x| half::f16::from_f32(x).to_ne_bytes()).collect(),
        DType::BF16 => v.iter().flat_map(|&x| half::bf16::from_f32(x).to_ne_bytes()).collect(),
        DType::F32 | DType::U32 => bytemuck::cast_slice(v).to_vec(),
    }
}

/// Float values from the bytes of a `dtype` tensor.
fn from_bytes(bytes: &[u8], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F16 => {
            bytes.chunks_exact(2).map(|b| half::f16::from_ne_bytes([b[0], b[1]]).to_f32()).collect()
        }
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_ne_bytes([b[0], b[1]]).to_f32())
            .collect(),
        DType::F32 | DType::U32 => {
            bytes.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
    }
}

/// One case's device, stream and element type. Every op and transfer of a case goes to the one
/// stream, so results are read after the work that makes them.
pub struct Ctx<B: Ops> {
    device: Device<B>,
    lease: Lease<B>,
    /// The float type of the case's operands.
    pub dtype: DType,
}

impl<B: Ops> Ctx<B> {
    /// A stream of `device` for a case in `dtype`.
    pub fn new(device: &Device<B>, dtype: DType) -> Self {
        let lease = device.acquire().expect("lease a stream for the ops suite");
        Self { device: device.clone(), lease, dtype }
    }

    /// The stream the case runs on.
    pub fn stream(&self) -> &B::Stream {
        self.lease.stream()
    }

    /// [`rand`] as the case's type stores it: what the device holds after the upload, so the
    /// reference sees the same operands.
    pub fn data(&self, n: usize, seed: u64) -> Vec<f32> {
        round(&rand(n, seed), self.dtype)
    }

    /// A tensor of the case's type holding `data`.
    pub fn tensor(&self, data: &[f32], shape: &[usize]) -> Tensor<B> {
        self.tensor_of(self.dtype, data, shape)
    }

    /// A tensor of `dtype` (a float type) holding `data` (rounded to it).
    pub fn tensor_of(&self, dtype: DType, data: &[f32], shape: &[usize]) -> Tensor<B> {
        Tensor::from_host_bytes(&self.device, self.stream(), dtype, &to_bytes(data, dtype), shape)
            .unwrap_or_else(|e| panic!("upload a {dtype} tensor of shape {shape:?}: {e}"))
    }

    /// [`Ctx::data`] of `shape`'s size and the tensor holding it.
    pub fn random(&self, shape: &[usize], seed: u64) -> (Vec<f32>, Tensor<B>) {
        let data = self.data(shape.iter().product(), seed);
        let t = self.tensor(&data, shape);
        (data, t)
    }

    /// Layer-norm parameters for rows of `dim`, on the host and on the device: gamma around 1,
    /// beta around 0.
    pub fn norm_params(&self, dim: usize, seed: u64) -> [(Vec<f32>, Tensor<B>); 2] {
        let gamma: Vec<f32> = self.data(dim, seed).iter().map(|v| 1.0 + 0.5 * v).collect();
        let gamma = round(&gamma, self.dtype);
        let g = self.tensor(&gamma, &[dim]);
        [(gamma, g), self.random(&[dim], seed + 1)]
    }

    /// An f32 tensor (masks are f32 whatever the case's type).
    pub fn f32_tensor(&self, data: &[f32], shape: &[usize]) -> Tensor<B> {
        self.tensor_of(DType::F32, data, shape)
    }

    /// A u32 tensor (token ids).
    pub fn u32_tensor(&self, data: &[u32], shape: &[usize]) -> Tensor<B> {
        Tensor::from_host_u32(&self.device, self.stream(), data, shape)
            .unwrap_or_else(|e| panic!("upload u32 ids of shape {shape:?}: {e}"))
    }

    /// A new tensor of the case's type (contents unspecified).
    pub fn empty(&self, shape: &[usize]) -> Tensor<B> {
        self.empty_of(self.dtype, shape)
    }

    /// A new tensor of `dtype` (contents unspecified).
    pub fn empty_of(&self, dtype: DType, shape: &[usize]) -> Tensor<B> {
        Tensor::empty(&self.device, shape, dtype)
            .unwrap_or_else(|e| panic!("allocate a {dtype} tensor of shape {shape:?}: {e}"))
    }

    /// The values of float tensor `t` (any float type), after the stream's earlier work.
    pub fn read(&self, t: &Tensor<B>) -> Vec<f32> {
        let mut bytes = vec![0u8; t.numel() * t.dtype().size()];
        t.read_host(self.stream(), t.dtype(), &mut bytes)
            .unwrap_or_else(|e| panic!("read back a {} tensor: {e}", t.dtype()));
        from_bytes(&bytes, t.dtype())
    }

    /// Reads `got` and checks it against `want` at the case's tolerance.
    #[track_caller]
    pub fn check(&self, what: &str, got: &Tensor<B>, want: &[f64]) {
        self.check_within(what, got, want, tolerance(self.dtype));
    }

    /// Reads `got` and checks `|got - want| <= tol * (1 + |want|)` everywhere.
    #[track_caller]
    pub fn check_within(&self, what: &str, got: &Tensor<B>, want: &[f64], tol: f64) {
        let what = format!("{what} [{} on {}]", self.dtype, self.device.backend().name());
        assert_close(&what, &self.read(got), want, tol);
    }
}

/// `|got - want| <= tol * (1 + |want|)` everywhere (NaN fails), with the first bad index in the
/// message.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, expected {}", got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs() / (1.0 + w.abs());
        assert!(err <= tol, "{what}[{i}]: got {g}, want {w} (scaled error {err:.2e} > {tol:.0e})");
    }
}

/// Runs `case` once for each float type of the backend ([`Ops::float_dtypes`]), each on a
/// fresh stream lease.
pub fn each_dtype<B: Ops>(device: &Device<B>, mut case: impl FnMut(&Ctx<B>)) {
    for &dtype in B::float_dtypes() {
        case(&Ctx::new(device, dtype));
    }
}
