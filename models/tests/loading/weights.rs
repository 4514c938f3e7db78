//! safetensors reading and writing: round trips and every failure on a bad file.

use std::path::{Path, PathBuf};

use half::{bf16, f16};
use streampool_models::loading::weights::{save, save_f32, Dtype, TensorData, Weights};
use streampool_models::loading::LoadError;

fn tmp_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// A hand-made safetensors file: header JSON, then `data`.
fn raw_file(path: &Path, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn f32_round_trip_and_listing() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_file(&dir, "w.safetensors");
    let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    let b = [f32::MIN_POSITIVE, -0.0, 1e30];
    save_f32(&path, &[("layer.a", &[2, 3], &a), ("layer.b", &[3], &b)]).unwrap();

    let w = Weights::open(&path).unwrap();
    assert_eq!(w.get_f32("layer.a", &[2, 3]).unwrap(), a);
    assert_eq!(w.get_f32("layer.b", &[3]).unwrap(), b);
    let names: Vec<_> = w.tensors().into_iter().map(|t| (t.name, t.dtype, t.shape)).collect();
    assert_eq!(
        names,
        vec![
            ("layer.a".into(), "F32".into(), vec![2, 3]),
            ("layer.b".into(), "F32".into(), vec![3])
        ]
    );
    assert!(w.contains("layer.a") && !w.contains("layer.c"));
    assert_eq!(w.shape("layer.b").unwrap(), &[3]);
}

#[test]
fn f16_and_bf16_round_trip_through_f32() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_file(&dir, "half.safetensors");
    let values = [1.0f32, -2.5, 0.099_975_586, 65504.0];
    let h: Vec<f16> = values.iter().copied().map(f16::from_f32).collect();
    let b: Vec<bf16> = values.iter().copied().map(bf16::from_f32).collect();
    save(&path, &[("h", &[2, 2], TensorData::F16(&h)), ("b", &[4], TensorData::BF16(&b))]).unwrap();

    let w = Weights::open(&path).unwrap();
    let want_h: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
    let want_b: Vec<f32> = b.iter().map(|v| v.to_f32()).collect();
    assert_eq!(w.get_f32("h", &[2, 2]).unwrap(), want_h);
    assert_eq!(w.get_f32("b", &[4]).unwrap(), want_b);
    assert_eq!(want_h[3], 65504.0);
    assert_eq!(want_b[1], -2.5);

    let raw = w.get_raw("h", &[2, 2]).unwrap();
    assert_eq!(raw.dtype, Dtype::F16);
    assert_eq!(raw.shape, &[2, 2]);
    assert_eq!(raw.bytes.len(), 4 * Dtype::F16.size());
    assert_eq!(&raw.bytes[..2], &h[0].to_bits().to_le_bytes());
    assert_eq!(w.get_raw("b", &[4]).unwrap().dtype, Dtype::BF16);
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_file(&dir, "t.safetensors");
    save_f32(&path, &[("w", &[64], &[1.0; 64])]).unwrap();
    let full = std::fs::read(&path).unwrap();

    // Data cut short.
    std::fs::write(&path, &full[..full.len() - 10]).unwrap();
    let err = Weights::open(&path).unwrap_err();
    assert!(matches!(err, LoadError::TruncatedSafetensors { .. }), "{err:?}");
    assert!(err.to_string().contains("fetch-model"), "{err}");

    // Header cut short.
    std::fs::write(&path, &full[..20]).unwrap();
    let err = Weights::open(&path).unwrap_err();
    assert!(matches!(err, LoadError::TruncatedSafetensors { .. }), "{err:?}");

    // Not even the length prefix.
    std::fs::write(&path, &full[..5]).unwrap();
    let err = Weights::open(&path).unwrap_err();
    assert!(matches!(err, LoadError::TruncatedSafetensors { .. }), "{err:?}");
}

#[test]
fn garbage_header_and_trailing_bytes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_file(&dir, "g.safetensors");
    raw_file(&path, "{this is not json at all", &[0; 16]);
    let err = Weights::open(&path).unwrap_err();
    assert!(matches!(err, LoadError::CorruptSafetensors { .. }), "{err:?}");

    // Offsets that do not tile the data.
    raw_file(&path, r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, &[0; 12]);
    let err = Weights::open(&path).unwrap_err();
    assert!(matches!(err, LoadError::CorruptSafetensors { .. }), "{err:?}");

    // Extra bytes after the data.
    raw_file(&path, r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 12]);
    let err = Weights::open(&path).unwrap_err();
    assert!(matches!(err, LoadError::CorruptSafetensors { .. }), "{err:?}");

    // Random bytes with an absurd header length.
    std::fs::write(&path, [0xffu8; 64]).unwrap();
    let err = Weights::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::CorruptSafetensors { .. } | LoadError::TruncatedSafetensors { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn wrong_shape_missing_tensor_wrong_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_file(&dir, "s.safetensors");
    save_f32(&path, &[("w", &[2, 3], &[0.0; 6])]).unwrap();
    let w = Weights::open(&path).unwrap();

    match w.get_f32("w", &[3, 2]).unwrap_err() {
        LoadError::WrongShape { name, expected, found, .. } => {
            assert_eq!(name, "w");
            assert_eq!(expected, vec![3, 2]);
            assert_eq!(found, vec![2, 3]);
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
    match w.get_f32("nope", &[1]).unwrap_err() {
        LoadError::TensorMissing { name, .. } => assert_eq!(name, "nope"),
        other => panic!("expected TensorMissing, got {other:?}"),
    }

    let ints = tmp_file(&dir, "i.safetensors");
    raw_file(&ints, r#"{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, &[0; 16]);
    let w = Weights::open(&ints).unwrap();
    assert_eq!(w.tensors()[0].dtype, "I64");
    match w.get_f32("ids", &[2]).unwrap_err() {
        LoadError::WrongDtype { name, found, .. } => {
            assert_eq!(name, "ids");
            assert_eq!(found, "I64");
        }
        other => panic!("expected WrongDtype, got {other:?}"),
    }
}

#[test]
fn missing_file_and_inconsistent_save() {
    let dir = tempfile::tempdir().unwrap();
    let err = Weights::open(&tmp_file(&dir, "absent.safetensors")).unwrap_err();
    assert!(matches!(err, LoadError::FileMissing { .. }), "{err:?}");

    let path = tmp_file(&dir, "bad.safetensors");
    let err = save_f32(&path, &[("w", &[2, 2], &[1.0; 3])]).unwrap_err();
    assert!(matches!(err, LoadError::InvalidTensorToSave { .. }), "{err:?}");
    let err = save_f32(&path, &[("w", &[1], &[1.0]), ("w", &[1], &[2.0])]).unwrap_err();
    assert!(matches!(err, LoadError::InvalidTensorToSave { .. }), "{err:?}");
    assert!(!path.exists());
}
