//! `streampool embed` end to end: JSON in, JSON out, in input order, matching the
//! sentence-transformers fixture; bad input gives a message and a non-zero exit, never a panic.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use streampool_models::testing;

/// The model directory, downloaded once if absent; `None` where it cannot be (no pip, no
/// network) outside CI, after a `SKIPPED` line on stderr: the test returns early.
fn model() -> Option<&'static Path> {
    testing::default_model().map(|files| files.dir.as_path())
}

/// `streampool embed` on the CPU with `model`, `args` and `stdin`.
fn embed(model: &Path, args: &[&str], stdin: &[u8]) -> Output {
    embed_on(model, &[&["--device", "cpu"][..], args].concat(), stdin)
}

fn fixture() -> serde_json::Value {
    let path = testing::reference_fixture_path();
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn embeds_stdin_in_order_matching_the_fixture() {
    let Some(model) = model() else { return };
    let cases = fixture()["cases"].as_array().unwrap().clone();
    let picked: Vec<&serde_json::Value> = cases.iter().rev().take(5).collect();
    let texts: Vec<&str> = picked.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let out = embed(model, &[], serde_json::to_string(&texts).unwrap().as_bytes());
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got.len(), texts.len());
    for (g, case) in got.iter().zip(&picked) {
        let want: Vec<f64> =
            case["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(g.len(), 384);
        let cos = cosine(g, &want);
        assert!(cos >= 0.99999, "{:?}: cosine {cos}", case["text"]);
    }
}

#[test]
fn reads_a_file_and_handles_empty_and_blank_texts() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("texts.json");
    std::fs::write(&path, r#"["", "   ", "hello"]"#).unwrap();
    let out = embed(model, &[path.to_str().unwrap()], b"");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got.len(), 3);
    for v in &got {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "embeddings are L2-normalised, got norm {norm}");
    }
    let empty = embed(model, &[], b"[]");
    assert!(empty.status.success());
    assert_eq!(String::from_utf8_lossy(&empty.stdout).trim(), "[]");
}

/// A bad input stops the run with a message naming the line; the output holds the embeddings
/// of the texts before it, still well-formed.
#[test]
fn bad_input_is_an_error_message_not_a_panic() {
    let Some(model) = model() else { return };
    for (input, expect, before) in [
        (&b"[\"ok\",\n \"\xff\"]"[..], "line 2: expected a JSON array of strings", 1),
        (b"[\"ok\", \"\xff\"]", "not valid UTF-8", 1),
        (b"{\"text\": 1}", "expected a JSON array of strings", 0),
        (b"[\"unterminated", "expected a JSON array of strings", 0),
        (b"[\"a\", \"b\", 3]", "invalid type: integer `3`, expected a string", 2),
    ] {
        let out = embed(model, &[], input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
        assert!(stderr.contains(expect), "stderr: {stderr}");
        assert!(!stderr.contains("panicked"), "stderr: {stderr}");
        let written: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(written.len(), before, "the texts before the bad one: {stderr}");
    }
}

/// The embeddings of a JSON-array input, for comparing the other formats against.
fn reference(model: &Path, texts: &[&str]) -> Vec<Vec<f32>> {
    let out = embed(model, &[], serde_json::to_string(texts).unwrap().as_bytes());
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn json_lines_with_a_field_stop_at_a_bad_line_or_skip_it() {
    let Some(model) = model() else { return };
    let input =
        b"{\"id\": 1, \"body\": \"A man is eating food.\"}\nnot json\n{\"body\": \"A cat sits\"}\n";
    let jsonl = ["--format-in", "jsonl", "--field", "body"];
    let out = embed(model, &jsonl, input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("line 2: not JSON"), "{stderr}");
    let out = embed(model, &[&jsonl[..], &["--skip-invalid", "--format", "jsonl"]].concat(), input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipped <stdin>: line 2: not JSON"), "each skipped line: {stderr}");
    assert!(stderr.contains("embedded 2 texts") && stderr.contains("; skipped 1 invalid line\n"));
    let got: Vec<Vec<f32>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = reference(model, &["A man is eating food.", "A cat sits"]);
    assert!(max_diff(&got, &want) <= 1e-6, "JSON Lines in and out give the JSON path's vectors");
}

#[test]
fn plain_text_in_and_a_npy_file_out() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.npy");
    let npy = ["--format-in", "text", "--format", "npy", "--output", path.to_str().unwrap()];
    let out = embed(model, &npy, b"first line\r\nsecond line\n");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&path).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + len]);
    assert!(header.contains("'descr': '<f4'") && header.contains("'shape': (2, 384)"), "{header}");
    let values: Vec<f32> = bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let got: Vec<Vec<f32>> = values.chunks(384).map(<[f32]>::to_vec).collect();
    assert!(max_diff(&got, &reference(model, &["first line", "second line"])) <= 1e-6);

    let out = embed(model, &["--format", "npy"], b"[\"a\"]");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--output"), "{stderr}");
}

/// Every input format: an empty input is an empty output; input that ends mid-line (stdin
/// closed early) is an error naming that line, after the texts before it.
#[test]
fn empty_and_truncated_inputs() {
    let Some(model) = model() else { return };
    for format_in in ["json", "jsonl", "text"] {
        for (format, empty) in [("json", "[]\n"), ("jsonl", "")] {
            let out = embed(model, &["--format-in", format_in, "--format", format], b"");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if format_in == "json" {
                // An empty file is not a JSON array.
                assert!(!out.status.success() && stderr.contains("line 1"), "{stderr}");
                continue;
            }
            assert!(out.status.success(), "{format_in} -> {format}: {stderr}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), empty, "{format_in} -> {format}");
            assert!(stderr.contains("embedded 0 texts"), "{stderr}");
        }
    }
    let cut = embed(model, &["--format-in", "jsonl", "--format", "jsonl"], b"\"one\"\n\"tw");
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(!cut.status.success() && stderr.contains("<stdin>: line 2: not JSON"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&cut.stdout).lines().count(), 1, "the text before it");
    let cut = embed(model, &[], b"[\"one\", \"two\"");
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(!cut.status.success() && stderr.contains("EOF while parsing"), "{stderr}");
    let written: Vec<Vec<f32>> = serde_json::from_slice(&cut.stdout).unwrap();
    assert_eq!(written.len(), 2, "both texts were read before the input ended");
}

/// A 1 MB text among short ones: embedded as its first 256 tokens, in its place.
#[test]
fn a_one_megabyte_text() {
    let Some(model) = model() else { return };
    let long = "All work and no play makes a dull day. ".repeat(27_000);
    let texts = ["short one", long.as_str(), "short two"];
    let out =
        embed(model, &["--format", "jsonl"], serde_json::to_string(&texts).unwrap().as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<Vec<f32>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first_page = &long[..4096];
    let want = reference(model, &["short one", first_page, "short two"]);
    assert!(max_diff(&got, &want) <= 1e-5);
}

/// The summary on stderr (texts, tokens, padding, rate), silenced by --quiet; options that do
/// not fit the device are refused with a message.
#[test]
fn summary_quiet_and_refused_options() {
    let Some(model) = model() else { return };
    let input = br#"["a", "b c", "d e f"]"#;
    let out = embed(model, &[], input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for part in
        ["embedded 3 texts", "tokens", "% padding", "texts/s", "f32, eager, 1 stream on cpu"]
    {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
    let out = embed(model, &["--quiet"], input);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (args, expect) in [
        (&["--dtype", "f16"][..], "precision f16"),
        (&["--mode", "graph"], "--mode graph does not run on cpu"),
        (&["--workers", "0"], "0 is not in 1..=256"),
        (&["--max-batch-tokens", "0"], "--max-batch-tokens"),
    ] {
        let out = embed(model, args, input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Any model directory of the supported architectures runs through `embed` (no download: the
/// tiny random-weight models of the repository, against their references).
#[test]
fn tiny_models_of_each_architecture() {
    for name in ["bert-cls", "bert-mean-sqrt-len-raw", "xlm-roberta-mean"] {
        let dir = testing::tiny_models_dir().join(name);
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
        let cases = reference["cases"].as_array().unwrap();
        let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
        let out =
            embed(&dir, &["--format", "jsonl"], serde_json::to_string(&texts).unwrap().as_bytes());
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<Vec<f32>> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got.len(), cases.len());
        for (row, case) in got.iter().zip(cases) {
            let want: Vec<f64> = serde_json::from_value(case["embedding"].clone()).unwrap();
            let diff =
                row.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(diff <= 1e-4, "{name}: {:?} differs by {diff}", case["text"]);
        }
    }
}

/// Prompts: `--prompt-name` prepends the model's named prompt, `--prompt` any text; the default
/// prompt applies when none is named; an unknown name lists the model's prompts.
#[test]
fn prompts_are_prepended() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bert-mean-prompts");
    let from = testing::tiny_models_dir().join("bert-mean");
    std::fs::create_dir_all(&dir).unwrap();
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(from.join(file), dir.join(file)).unwrap();
    }
    for sub in ["1_Pooling", "2_Normalize"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(from.join(sub).join("config.json"), dir.join(sub).join("config.json"))
            .unwrap();
    }
    let prompts = r#"{"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": "document"}"#;
    std::fs::write(dir.join("config_sentence_transformers.json"), prompts).unwrap();
    let run = |args: &[&str], texts: &[&str]| -> Vec<Vec<f32>> {
        let out = embed(&dir, args, serde_json::to_string(texts).unwrap().as_bytes());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let texts = ["how do pods restart", "a text"];
    let plain = run(&["--prompt", ""], &["query: how do pods restart", "query: a text"]);
    assert_eq!(run(&["--prompt-name", "query"], &texts), plain);
    assert_eq!(run(&["--prompt", "query: "], &texts), plain);
    let passages = run(&["--prompt", ""], &["passage: how do pods restart", "passage: a text"]);
    assert_eq!(run(&[], &texts), passages, "the default prompt");
    let out = embed(&dir, &["--prompt-name", "nope"], b"[\"x\"]");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("no prompt `nope`")
            && stderr.contains("document, query"),
        "{stderr}"
    );
}

/// A model whose pooling leaves the prompt out (`include_prompt: false`): `--prompt-name`
/// through the corpus pipeline gives sentence-transformers' vectors (`reference.json`, embedded
/// with the `query` prompt), which differ from pooling the prompt too.
#[test]
fn prompts_left_out_of_the_pooling_match_sentence_transformers() {
    let dir = testing::tiny_models_dir().join("bert-mean-prompt-excluded");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    assert_eq!(reference["prompt_name"], "query");
    let cases = reference["cases"].as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let out =
        embed(&dir, &["--prompt-name", "query"], serde_json::to_string(&texts).unwrap().as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got.len(), cases.len());
    for (g, case) in got.iter().zip(cases) {
        let want: Vec<f64> = serde_json::from_value(case["embedding"].clone()).unwrap();
        let cos = cosine(g, &want);
        assert!(cos >= 0.99999, "{:?}: cosine {cos}", case["text"]);
    }
    // The prompt pooled as well (a plain prepended text) is another vector.
    let prompt = "query: find the ";
    let first = format!("{prompt}{}", texts[0]);
    let out = embed(&dir, &["--prompt", ""], serde_json::to_string(&[first]).unwrap().as_bytes());
    let pooled_too: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cosine(&pooled_too[0], &got[0]) < 0.9999);
}

/// `streampool embed` with `model`, `args` (its `--device` among them) and `stdin`.
fn embed_on(model: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streampool"))
        .args(["embed", "--model"])
        .arg(model)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A run refused before it reads its input (a bad option) closes stdin early: not an error.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the child's stdin: {e}");
    }
    child.wait_with_output().unwrap()
}

#[test]
fn several_cpu_devices_give_the_output_of_one() {
    let Some(model) = model() else { return };
    let cases = fixture()["cases"].as_array().unwrap().clone();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let input = serde_json::to_string(&texts).unwrap();
    // Small batches, so that every device gets some.
    let small = ["--max-batch-tokens", "128", "--workers", "1"];
    let one = embed_on(model, &[&["--device", "cpu"][..], &small].concat(), input.as_bytes());
    assert!(one.status.success(), "stderr: {}", String::from_utf8_lossy(&one.stderr));
    let three =
        embed_on(model, &[&["--device", "cpu:0,1,2"][..], &small].concat(), input.as_bytes());
    let stderr = String::from_utf8_lossy(&three.stderr);
    assert!(three.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("on each of cpu:0,cpu:1,cpu:2"), "{stderr}");
    let (a, b): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (
        serde_json::from_slice(&one.stdout).unwrap(),
        serde_json::from_slice(&three.stdout).unwrap(),
    );
    assert_eq!(a.len(), 30);
    assert!(max_diff(&a, &b) <= 1e-6, "{}", max_diff(&a, &b));
}

#[test]
fn a_device_list_that_cannot_be_opened_names_the_device() {
    let Some(model) = model() else { return };
    // Without CUDA (CI) GPU 0 fails; on a GPU machine, GPU 15 (none has 16).
    for (device, says, code) in [
        ("cuda:0,15", &["cuda:0: ", "cuda:15: "][..], 1),
        ("cuda:1,1", &["listed twice"], 2),
        ("tpu:0", &["unknown device"], 2),
    ] {
        let out = embed_on(model, &["--device", device], b"[\"text\"]");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(says.iter().any(|s| stderr.contains(s)), "{device}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
