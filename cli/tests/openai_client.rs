//! `streampool serve` on the CPU as real clients see it: `scripts/test-openai-client.py` calls it
//! with the official `openai` Python package (default encoding, `float`, `base64`, one string)
//! and with urllib (`base64`), and compares the vectors with the sentence-transformers fixture.
//!
//! Python is `$STREAMPOOL_OPENAI_PYTHON`, else `python3`. Where none runs, or it lacks the `openai`
//! package (the script exits 3), the test prints a `SKIPPED:` line and passes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use streampool_models::testing;

/// What the script exits with when `import openai` fails.
const SCRIPT_SKIPPED: i32 = 3;

/// A `SKIPPED:` line straight to the process's stderr: libtest captures `eprintln!` of passing
/// tests, and a skip must be seen.
fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("this test").to_owned();
    let line = format!("SKIPPED: {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The Python to run the script with, or `None` (after a skip line) where it does not start.
fn python() -> Option<String> {
    let python = std::env::var("STREAMPOOL_OPENAI_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned());
    match Command::new(&python).arg("--version").output() {
        Ok(out) if out.status.success() => Some(python),
        Ok(out) => {
            skip(&format!("`{python} --version` failed ({})", out.status));
            None
        }
        Err(e) => {
            skip(&format!("no Python: `{python}` does not run ({e})"));
            None
        }
    }
}

#[test]
fn openai_python_client_gets_the_fixture_vectors() {
    let Some(python) = python() else { return };
    let Some(model) = testing::default_model() else { return };
    let script: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-openai-client.py");
    let fixture = testing::reference_fixture_path();
    let (_server, addr) = common::start(common::serve(&model.dir, &[]));

    let out = Command::new(&python)
        .arg(&script)
        .arg("--base-url")
        .arg(format!("http://{addr}/v1"))
        .arg("--fixture")
        .arg(&fixture)
        .output()
        .unwrap_or_else(|e| panic!("running {python} {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(SCRIPT_SKIPPED) {
        let reason = stdout.trim();
        skip(&format!("{python}: {}", reason.strip_prefix("SKIPPED: ").unwrap_or(reason)));
        return;
    }
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        python,
        script.display(),
        out.status
    );
    let _ = std::io::stderr().lock().write_all(stdout.as_bytes());
}
