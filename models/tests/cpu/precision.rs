//! Reduced precision on the CPU backend: refused with typed errors, never a panic, and f32
//! unchanged. The ops refuse f16 / bf16 operands ([`OpError::Unsupported`]) and TF32 math;
//! `MiniLm::load_with` refuses every mode but f32 before reading any file.

use std::path::PathBuf;
use streampool_core::MatMath;

use streampool_core::{Device, PoolConfig};
use streampool_cpu::CpuBackend;
use streampool_models::loading::ModelFiles;
use streampool_models::{MiniLm, ModelError, Precision};
use streampool_tensor::{Activation, DType, OpError, Ops, Tensor};

fn device() -> Device<CpuBackend> {
    Device::new(CpuBackend::new(), PoolConfig::with_capacity(2))
}

#[test]
fn cpu_ops_refuse_half_operands_and_tf32() {
    let device = device();
    let lease = device.acquire().unwrap();
    let s = lease.stream();
    for dtype in [DType::F16, DType::BF16] {
        let x = Tensor::empty(&device, &[2, 4], dtype).unwrap();
        let w = Tensor::empty(&device, &[3, 4], dtype).unwrap();
        let out = Tensor::empty(&device, &[2, 3], dtype).unwrap();
        let e = CpuBackend::linear(s, &x, &w, None, Activation::Identity, &out).unwrap_err();
        assert!(matches!(e, OpError::Unsupported { op: "linear", .. }), "{dtype}: {e:?}");
        let e = CpuBackend::l2_normalize(s, &out, &out).unwrap_err();
        assert!(matches!(e, OpError::Unsupported { .. }), "{dtype}: {e:?}");
    }
    let x = Tensor::from_host(&device, s, &[1.0; 8], &[2, 4]).unwrap();
    let w = Tensor::from_host(&device, s, &[0.5; 12], &[3, 4]).unwrap();
    let out = Tensor::empty(&device, &[2, 3], DType::F32).unwrap();
    let id = Activation::Identity;
    let e = CpuBackend::linear_math(s, &x, &w, None, id, MatMath::Tf32, &out).unwrap_err();
    assert!(matches!(e, OpError::Unsupported { op: "linear", .. }), "{e:?}");
    CpuBackend::linear_math(s, &x, &w, None, id, MatMath::Exact, &out).unwrap();
    assert_eq!(out.to_host(s).unwrap(), vec![2.0; 6]);
    // A u32 operand is still a dtype error.
    let ids = Tensor::from_host_u32(&device, s, &[0; 8], &[2, 4]).unwrap();
    let e = CpuBackend::linear(s, &ids, &w, None, id, &out).unwrap_err();
    assert!(matches!(e, OpError::DType { .. }), "{e:?}");
}

#[test]
fn minilm_load_with_reduced_precision_on_the_cpu_is_unsupported() {
    let missing = PathBuf::from("/nonexistent/streampool-model");
    let files = ModelFiles {
        dir: missing.clone(),
        config: missing.join("config.json"),
        tokenizer: missing.join("tokenizer.json"),
        weights: missing.join("model.safetensors"),
        sentence_config: missing.join("sentence_bert_config.json"),
        pooling_config: missing.join("1_Pooling/config.json"),
    };
    let device = device();
    for p in [Precision::Tf32, Precision::F16, Precision::Bf16] {
        let e = MiniLm::load_with(&device, &files, p).unwrap_err();
        assert!(matches!(e, ModelError::Unsupported { .. }), "{p}: {e}");
    }
    // f32 gets past the precision check and fails on the missing files instead.
    let e = MiniLm::load_with(&device, &files, Precision::F32).unwrap_err();
    assert!(!matches!(e, ModelError::Unsupported { .. }), "{e}");
}
