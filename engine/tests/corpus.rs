//! The corpus pipeline ([`streampool_engine::corpus`]) with a model whose answers are known:
//! output order and values against one text at a time, every error path (each stops the run,
//! nothing hangs), and what reaches the sink.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use streampool_core::{Device, PoolConfig};
use streampool_cpu::{CpuBackend, CpuStream};
use streampool_engine::corpus::{
    embed_corpus, embed_corpus_on, CorpusConfig, CorpusError, CorpusModel, CorpusStats,
};
use streampool_engine::{BatchFailure, BatchModel};

/// A text's "tokens": its words plus two specials. Its "embedding": [tokens, a hash of the
/// text, the batch's row count] (the last is dropped before comparing with one text at a time).
struct Words {
    device: Device<CpuBackend>,
    /// Batches run so far.
    batches: AtomicUsize,
    /// A text that fails its batch, a text that panics it, a text that loses a row.
    fail: Option<&'static str>,
    panic: Option<&'static str>,
    short: Option<&'static str>,
}

/// Why [`Words`] refuses.
#[derive(Debug, thiserror::Error)]
#[error("refused {0:?}")]
struct Refused(String);

fn hash(text: &str) -> f32 {
    text.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) as f32
}

impl Words {
    fn new(slots: usize) -> Self {
        Self::on(0, slots)
    }

    /// On CPU device `ordinal` (`cpu:ordinal`).
    fn on(ordinal: usize, slots: usize) -> Self {
        let backend = CpuBackend::with_ordinal(ordinal);
        let device = Device::new(backend, PoolConfig::with_capacity(slots));
        Self { device, batches: AtomicUsize::new(0), fail: None, panic: None, short: None }
    }
}

impl BatchModel for Words {
    type Backend = CpuBackend;
    type Input = (String, usize);
    type Output = Vec<f32>;
    type Error = Refused;

    fn device(&self) -> &Device<CpuBackend> {
        &self.device
    }

    fn check(&self, _: &(String, usize)) -> Result<(), Refused> {
        Ok(())
    }

    fn run(&self, _: &CpuStream, inputs: &[(String, usize)]) -> Result<Vec<Vec<f32>>, Refused> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let has = |t: Option<&str>| t.and_then(|t| inputs.iter().find(|(x, _)| x == t));
        if let Some((t, _)) = has(self.fail) {
            return Err(Refused(t.clone()));
        }
        if let Some((t, _)) = has(self.panic) {
            panic!("cannot embed {t:?}");
        }
        let mut rows: Vec<Vec<f32>> =
            inputs.iter().map(|(t, n)| vec![*n as f32, hash(t), inputs.len() as f32]).collect();
        if has(self.short).is_some() {
            rows.pop();
        }
        Ok(rows)
    }
}

impl CorpusModel for Words {
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<(String, usize)>, Refused> {
        match texts.iter().find(|t| t.contains("untokenisable")) {
            Some(t) => Err(Refused(t.to_string())),
            None => Ok(texts
                .iter()
                .map(|t| (t.to_string(), t.split_whitespace().count() + 2))
                .collect()),
        }
    }

    fn tokens(input: &(String, usize)) -> usize {
        input.1
    }
}

/// `count` texts of shuffled lengths (0 to 60 words), each distinct.
fn texts(count: usize) -> Vec<String> {
    let lengths = streampool_core::testing::rand(count, 42);
    (0..count)
        .map(|i| {
            let words = ((lengths[i] + 1.0) * 30.0) as usize;
            let mut t = format!("t{i}");
            for w in 0..words {
                t.push_str(if w % 3 == 0 { " alpha" } else { " b" });
            }
            t
        })
        .collect()
}

fn ok(texts: &[String]) -> impl Iterator<Item = Result<String, io::Error>> + Send + '_ {
    texts.iter().cloned().map(Ok)
}

/// What a run returns.
type Outcome = Result<CorpusStats, CorpusError<io::Error, Refused>>;

/// Run `texts` and collect what reaches the sink (rows without their batch size).
fn run(
    model: &Words,
    config: &CorpusConfig,
    texts: impl IntoIterator<Item = Result<String, io::Error>, IntoIter: Send>,
) -> (Vec<Vec<f32>>, Outcome) {
    let mut rows = Vec::new();
    let result = embed_corpus(
        model,
        config,
        texts,
        |chunk| {
            rows.extend(chunk.iter().map(|r| r[..2].to_vec()));
            Ok(())
        },
        |_| {},
    );
    (rows, result)
}

/// The answer for each text alone.
fn one_at_a_time(texts: &[String]) -> Vec<Vec<f32>> {
    texts.iter().map(|t| vec![(t.split_whitespace().count() + 2) as f32, hash(t)]).collect()
}

/// 10,000 texts of shuffled lengths, under many settings: each exactly once, in input order,
/// with its own answer; batches within budget and really batched.
#[test]
fn ten_thousand_texts_come_back_in_order_under_any_settings() {
    let texts = texts(10_000);
    let want = one_at_a_time(&texts);
    let tokens: usize = want.iter().map(|r| r[0] as usize).sum();
    for (workers, window, max_batch_tokens, max_batch_rows) in [
        (4, 8192, 4096, 512),
        (1, 1, 64, 8),
        (3, 7, 256, 4),
        (8, 1000, 100_000, 64),
        (2, 333, 40, 512),
    ] {
        let config = CorpusConfig {
            workers,
            window,
            max_batch_tokens,
            max_batch_rows,
            queued_batches: 3,
            sink_chunk: 100,
            ..CorpusConfig::default()
        };
        let model = Words::new(workers);
        let (rows, stats) = run(&model, &config, ok(&texts));
        let stats = stats.unwrap();
        let what = format!("{workers} workers, window {window}, {max_batch_tokens} tokens");
        assert_eq!(rows, want, "{what}");
        assert_eq!((stats.texts, stats.tokens), (texts.len(), tokens), "{what}");
        assert!(stats.padded_tokens >= stats.tokens);
        assert_eq!(stats.batches, model.batches.load(Ordering::Relaxed));
        if window >= 1000 {
            assert!(stats.batches * 10 < texts.len(), "{what}: {} batches", stats.batches);
            assert!(stats.padding_share() < 0.1, "{what}: sorted windows pad little");
        }
    }
}

/// The sink gets consecutive rows from text 0, the progress callback growing counts.
#[test]
fn sink_chunks_are_consecutive_and_progress_grows() {
    let texts = texts(5000);
    let model = Words::new(4);
    let config = CorpusConfig { window: 500, sink_chunk: 64, ..CorpusConfig::default() };
    let (mut seen, mut calls, mut last) = (0usize, 0usize, CorpusStats::default());
    let stats = embed_corpus(
        &model,
        &config,
        ok(&texts),
        |chunk| {
            assert!(!chunk.is_empty() && chunk.len() <= 64);
            for row in chunk {
                assert_eq!(row[1], hash(&texts[seen]), "row {seen}");
                seen += 1;
            }
            Ok(())
        },
        |s| {
            calls += 1;
            assert!(s.texts > last.texts && s.tokens >= last.tokens && s.elapsed >= last.elapsed);
            last = *s;
        },
    )
    .unwrap();
    assert_eq!((seen, last.texts, stats.texts), (5000, 5000, 5000));
    assert!(calls >= 5000 / 64);
}

#[test]
fn an_empty_input_calls_nothing() {
    let model = Words::new(4);
    let (rows, stats) = run(&model, &CorpusConfig::default(), ok(&[]));
    assert!(rows.is_empty());
    assert_eq!(stats.unwrap().texts, 0);
    assert_eq!(model.batches.load(Ordering::Relaxed), 0);
}

/// A bad input stops reading; the texts before it are embedded and written, then the error.
#[test]
fn an_input_error_keeps_every_text_before_it() {
    let texts = texts(3000);
    let model = Words::new(4);
    let config = CorpusConfig { window: 256, ..CorpusConfig::default() };
    let input = texts.iter().enumerate().map(|(i, t)| match i {
        2100 => Err(io::Error::other("line 2101 is bad")),
        _ => Ok(t.clone()),
    });
    let (rows, result) = run(&model, &config, input);
    let error = result.unwrap_err();
    assert!(matches!(error, CorpusError::Input(ref e) if e.to_string() == "line 2101 is bad"));
    assert_eq!(rows, one_at_a_time(&texts[..2100]));
}

/// A failing, panicking or row-losing batch stops the run with the batch's error; what was
/// written is a prefix of the right answers.
#[test]
fn a_failing_batch_stops_the_run_with_its_error() {
    let texts = texts(20_000);
    let want = one_at_a_time(&texts);
    let config = CorpusConfig { window: 512, queued_batches: 2, ..CorpusConfig::default() };
    let bad = texts[9000].clone().leak() as &'static str;
    for kind in ["fail", "panic", "short"] {
        let mut model = Words::new(4);
        match kind {
            "fail" => model.fail = Some(bad),
            "panic" => model.panic = Some(bad),
            _ => model.short = Some(bad),
        }
        let (rows, result) = run(&model, &config, ok(&texts));
        let error = result.unwrap_err();
        let CorpusError::Batch { rows: n, ref cause, .. } = error else {
            panic!("{kind}: {error}");
        };
        match (kind, cause) {
            ("fail", BatchFailure::Model(e)) => assert_eq!(e.0, bad),
            ("panic", BatchFailure::Panicked(m)) => assert!(m.contains("cannot embed"), "{m}"),
            ("short", BatchFailure::OutputCount { inputs, outputs }) => {
                assert_eq!((*inputs, *outputs), (n, n - 1))
            }
            _ => panic!("{kind}: {error}"),
        }
        assert!(rows.len() < 9000 + 512, "{kind}: stopped near the bad batch");
        assert_eq!(rows, want[..rows.len()], "{kind}: a prefix of the answers");
        assert!(model.batches.load(Ordering::Relaxed) < 20_000 / 4, "{kind}: stopped early");
    }
}

#[test]
fn a_tokeniser_error_names_the_window() {
    let mut texts = texts(1000);
    texts[700] = "an untokenisable text".into();
    let model = Words::new(4);
    let config = CorpusConfig { window: 300, ..CorpusConfig::default() };
    let (rows, result) = run(&model, &config, ok(&texts));
    let error = result.unwrap_err();
    assert!(matches!(error, CorpusError::Tokenize { first: 600, end: 900, .. }), "{error}");
    assert!(rows.len() <= 600);
}

/// A sink that fails (a full disk, a closed pipe) stops the run at once: no hang, however much
/// input is left, and the sink is not called again.
#[test]
fn a_sink_error_stops_the_run() {
    let texts = texts(50_000);
    let model = Words::new(4);
    let config = CorpusConfig { window: 1000, sink_chunk: 100, ..CorpusConfig::default() };
    let mut calls = 0;
    let result = embed_corpus(
        &model,
        &config,
        ok(&texts),
        |_| {
            calls += 1;
            match calls {
                3 => Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed")),
                c => {
                    assert!(c < 3, "called after failing");
                    Ok(())
                }
            }
        },
        |_| {},
    );
    let error = result.unwrap_err();
    assert!(matches!(error, CorpusError::Output(ref e) if e.kind() == io::ErrorKind::BrokenPipe));
    assert!(model.batches.load(Ordering::Relaxed) < 50_000 / 10, "stopped early");
}

#[test]
fn more_workers_than_slots_is_a_start_error() {
    let model = Words::new(2);
    let config = CorpusConfig { workers: 3, ..CorpusConfig::default() };
    let (_, result) = run(&model, &config, ok(&texts(10)));
    let error = result.unwrap_err();
    assert!(matches!(error, CorpusError::Start { worker: 3, workers: 3, .. }), "{error}");
    // The slots leased for the run are back.
    let (rows, result) = run(&model, &CorpusConfig { workers: 2, ..config }, ok(&texts(10)));
    assert_eq!((rows.len(), result.unwrap().texts), (10, 10));
}

#[test]
fn three_devices_give_the_output_of_one_and_each_runs_batches() {
    let texts = texts(10_000);
    let config =
        CorpusConfig { workers: 2, window: 500, max_batch_tokens: 600, ..CorpusConfig::default() };
    let (alone, result) = run(&Words::new(4), &config, ok(&texts));
    let alone_stats = result.unwrap();
    assert_eq!(alone, one_at_a_time(&texts));
    let copies = [Words::on(0, 4), Words::on(1, 4), Words::on(2, 4)];
    let models: Vec<&Words> = copies.iter().collect();
    let mut rows = Vec::new();
    let stats = embed_corpus_on(
        &models,
        &config,
        ok(&texts),
        |chunk| {
            rows.extend(chunk.iter().map(|r| r[..2].to_vec()));
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(rows, alone);
    assert_eq!(
        (stats.texts, stats.tokens, stats.batches),
        (10_000, alone_stats.tokens, alone_stats.batches)
    );
    let per_device: Vec<usize> = copies.iter().map(|m| m.batches.load(Ordering::Relaxed)).collect();
    assert_eq!(per_device.iter().sum::<usize>(), stats.batches, "{per_device:?}");
    assert!(per_device.iter().all(|&b| b > 0), "every device ran batches: {per_device:?}");
}

#[test]
fn a_failing_device_names_itself_and_a_small_one_fails_the_start() {
    let texts = texts(2000);
    let config = CorpusConfig { workers: 2, window: 100, ..CorpusConfig::default() };
    let broken = Words { fail: Some("t1500 b"), ..Words::on(1, 4) };
    // Every copy fails the same text: whichever device takes it is named.
    let copies = [Words { fail: Some("t1500 b"), ..Words::on(0, 4) }, broken];
    let models: Vec<&Words> = copies.iter().collect();
    let texts: Vec<String> = texts
        .into_iter()
        .enumerate()
        .map(|(i, t)| if i == 1500 { "t1500 b".into() } else { t })
        .collect();
    let result = embed_corpus_on(&models, &config, ok(&texts), |_| Ok(()), |_| {});
    match result {
        Err(CorpusError::Batch { device, .. }) => assert!(device == "cpu:0" || device == "cpu:1"),
        other => panic!("{other:?}"),
    }
    let small = [Words::on(0, 4), Words::on(1, 1)];
    let models: Vec<&Words> = small.iter().collect();
    match embed_corpus_on(&models, &config, ok(&texts), |_| Ok(()), |_| {}) {
        Err(CorpusError::Start { device, worker: 2, workers: 2, .. }) => {
            assert_eq!(device, "cpu:1")
        }
        other => panic!("{other:?}"),
    }
}
