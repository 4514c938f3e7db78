//! `--model ORG/NAME` through a stand-in for the Hugging Face Hub (a local HTTP server answering
//! as the Hub's `resolve` endpoint does: ranged reads, `etag` and `x-repo-commit` headers, 404 for
//! a missing file), pointed at with `HF_ENDPOINT`: the files streampool reads are downloaded into
//! `HF_HOME`, the model gives the same vectors as its local directory, a second run uses the
//! cache, and an unknown repository is a clear error.
#![cfg(feature = "hub")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use streampool_models::testing::tiny_models_dir;

/// Serves `root/<org>/<name>/<file>` as `/<org>/<name>/resolve/main/<file>`; counts file
/// requests that found a file.
struct FakeHub {
    url: String,
    served: Arc<AtomicUsize>,
}

impl FakeHub {
    fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, count) = (root.clone(), count.clone());
                std::thread::spawn(move || answer(stream, &root, &count));
            }
        });
        Self { url, served }
    }
}

/// One request (the connection is closed after it).
fn answer(mut stream: TcpStream, root: &Path, served: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut start = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap() == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(range) = lower.strip_prefix("range: bytes=") {
            start = range.split('-').next().unwrap().trim().parse().unwrap();
        }
    }
    let file = path
        .split_once("/resolve/main/")
        .map(|(repo, file)| root.join(repo.trim_start_matches('/')).join(file));
    let body = file.and_then(|f| std::fs::read(f).ok());
    let Some(body) = body else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    served.fetch_add(1, Ordering::SeqCst);
    // hf-hub probes with `bytes=0-0` and downloads with `bytes=N-`: both get everything from
    // `start` (a server may send more than a probe asks for).
    let end = body.len();
    let part = &body[start.min(end)..end];
    let digest = format!("{:x}", body.len() * 2654435761 % 1_000_000_007);
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n\
         etag: \"{digest}\"\r\nx-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\n\
         Connection: close\r\n\r\n",
        part.len(),
        start,
        end.saturating_sub(1),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(part);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

fn embed(model: &str, env: &[(&str, &Path)], hub: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streampool"))
        .args(["embed", "--device", "cpu", "--quiet", "--model", model])
        .env("HF_ENDPOINT", hub)
        .env_remove("HF_TOKEN")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(br#"["A man is eating food.", "Zurich"]"#).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_hub_model_is_downloaded_once_and_embeds_as_its_directory() {
    let root = tempfile::tempdir().unwrap();
    // The "Hub": tiny models published as `tiny/<name>`.
    let org = root.path().join("tiny");
    std::fs::create_dir_all(&org).unwrap();
    for name in ["bert-mean", "bert-dense"] {
        copy_dir(&tiny_models_dir().join(name), &org.join(name));
    }
    let hub = FakeHub::start(root.path().to_path_buf());
    let home = tempfile::tempdir().unwrap();
    let env = [("HF_HOME", home.path())];
    for name in ["bert-mean", "bert-dense"] {
        let out = embed(&format!("tiny/{name}"), &env, &hub.url);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let local = embed(tiny_models_dir().join(name).to_str().unwrap(), &[], &hub.url);
        assert!(local.status.success());
        let (got, want): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (
            serde_json::from_slice(&out.stdout).unwrap(),
            serde_json::from_slice(&local.stdout).unwrap(),
        );
        assert_eq!(got, want, "{name}: the Hub copy embeds as the directory does");
    }
    // The Dense modules' folders came along.
    let snapshot = home.path().join("hub/models--tiny--bert-dense/snapshots");
    let commit = std::fs::read_dir(&snapshot).unwrap().next().unwrap().unwrap().path();
    for file in ["2_Dense/model.safetensors", "3_Dense/config.json", "modules.json"] {
        assert!(commit.join(file).is_file(), "{file} in {}", commit.display());
    }
    // A second run reads the cache: no file is served again.
    let before = hub.served.load(Ordering::SeqCst);
    let out = embed("tiny/bert-mean", &env, &hub.url);
    assert!(out.status.success());
    assert_eq!(hub.served.load(Ordering::SeqCst), before, "files served again");
    // A repository the Hub does not have: a message naming it and the file, non-zero exit.
    let out = embed("tiny/no-such-model", &env, &hub.url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("tiny/no-such-model") && err.contains("config.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn what_is_neither_a_directory_a_known_model_nor_a_hub_id_is_refused() {
    let out = embed("./no/such/dir", &[], "http://127.0.0.1:9");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no such directory") && err.contains("ORG/NAME"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}
