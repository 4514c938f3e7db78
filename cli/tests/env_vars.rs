//! docs/cuda.md's table of environment variables agrees with the code, both ways:
//!
//! - every `"STREAMPOOL_…"` string literal in a crate's `src/` (a variable the library or the CLI
//!   reads) has a row in the table;
//! - every `STREAMPOOL_…` name in the table is still read somewhere: by a crate's `src/`, by its
//!   `tests/` or `benches/`, or by a script under `scripts/`. The doc never lists a dead variable.
//!
//! Plain `std`: the workspace is walked from this crate's parent directory, skipping `target/`
//! and hidden folders.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The prefix every variable shares (a literal of the prefix alone names no variable).
const PREFIX: &str = "STREAMPOOL_";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the cli crate has a parent").to_owned()
}

/// Every file under `dir` (recursively) whose name ends with one of `extensions` (all files when
/// empty), skipping hidden folders and `target/`.
fn files(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                files(&path, extensions, out);
            }
        } else if extensions.is_empty() || extensions.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
}

/// The crates of the workspace: every folder below the root with a `Cargo.toml`.
fn crates(root: &Path) -> Vec<PathBuf> {
    let mut manifests = Vec::new();
    files(root, &["Cargo.toml"], &mut manifests);
    manifests
        .into_iter()
        .filter_map(|m| m.parent().map(Path::to_owned))
        .filter(|dir| dir != root && !dir.starts_with(root.join("docs")))
        .collect()
}

/// The names of `"STREAMPOOL_[A-Z0-9_]+"` string literals in Rust source (the quote closing
/// right after the name; comment lines skipped).
fn literals(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in source.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find(&format!("\"{PREFIX}")) {
            let after = &rest[at + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(after.len());
            if len > PREFIX.len() && after[len..].starts_with('"') {
                names.insert(after[..len].to_owned());
            }
            rest = &after[len..];
        }
    }
    names
}

/// Every `STREAMPOOL_[A-Z0-9_]+` word in `text`, literal or not.
fn mentions(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let after = &rest[at..];
        let len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if len > PREFIX.len() {
            names.insert(after[..len].to_owned());
        }
        rest = &after[len..];
    }
    names
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Literals in the `.rs` files under `sub` of every crate.
fn literals_in(crates: &[PathBuf], sub: &str) -> BTreeSet<String> {
    let mut sources = Vec::new();
    for dir in crates {
        files(&dir.join(sub), &[".rs"], &mut sources);
    }
    sources.iter().flat_map(|path| literals(&read(path))).collect()
}

/// The names in the first column of docs/cuda.md's table rows.
fn documented(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(mentions)
        .collect()
}

#[test]
fn every_variable_the_code_reads_is_in_the_table_and_none_more() {
    let root = workspace();
    let crates = crates(&root);
    assert!(crates.iter().any(|c| c.ends_with("core")), "no crates found under {}", root.display());
    let doc = read(&root.join("docs/cuda.md"));
    let table = documented(&doc);

    let code = literals_in(&crates, "src");
    assert!(!code.is_empty(), "no STREAMPOOL_ literal found in any crate's src/");
    let missing: Vec<_> = code.difference(&table).collect();
    assert!(missing.is_empty(), "read by the code but not in docs/cuda.md's table: {missing:?}");

    let mut read_anywhere = code;
    read_anywhere.extend(literals_in(&crates, "tests"));
    read_anywhere.extend(literals_in(&crates, "benches"));
    let mut scripts = Vec::new();
    files(&root.join("scripts"), &[], &mut scripts);
    for script in &scripts {
        if let Ok(text) = fs::read_to_string(script) {
            read_anywhere.extend(mentions(&text));
        }
    }
    let dead: Vec<_> = table.difference(&read_anywhere).collect();
    assert!(dead.is_empty(), "in docs/cuda.md's table but read nowhere: {dead:?}");
}

#[test]
fn the_scanners_find_what_they_should() {
    let source = "const A: &str = \"STREAMPOOL_HOME\";\n\
                  // \"STREAMPOOL_IN_A_COMMENT\"\n\
                  let m = \"set STREAMPOOL_NOT_ALONE to x\"; var(\"STREAMPOOL_X2\")";
    let found: Vec<_> = literals(source).into_iter().collect();
    assert_eq!(found, ["STREAMPOOL_HOME", "STREAMPOOL_X2"]);
    let row = "| `STREAMPOOL_A_B` | see STREAMPOOL_C |";
    assert_eq!(documented(row).into_iter().collect::<Vec<_>>(), ["STREAMPOOL_A_B"]);
}
