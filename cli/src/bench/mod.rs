//! `streampool bench`: requests per second as threads grow, each thread on its own stream (or,
//! with `--engine N`, each submitting to an engine of N workers); a batched call on one stream
//! as the ceiling. Table on stdout, `--json`, `--plot` (SVG).

mod measure;
mod report;
mod workloads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use streampool_core::{Device, PoolConfig};
use streampool_engine::{Engine, EngineConfig, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::loading::Encoding;
use streampool_models::{synthetic, Conv1dNet, MiniLm, Mlp, Precision};
use streampool_tensor::Ops;

use crate::device::{load_copies, with_device, DeviceChoice, OnDevice};
pub use report::Report;

/// Which model the bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchModel {
    /// all-MiniLM-L6-v2 sentence embeddings, `--seq` tokens per text.
    Minilm,
    /// A 3-layer MLP (384 → 1536 → 384), synthetic weights.
    Mlp,
    /// A 3-layer Conv1D net (64 → 128 → 64 channels, kernel 3) over `--seq` positions.
    Conv1d,
    /// The core's portable ops (fill + multiply-add chains over `--seq` words): runtime overhead.
    Demo,
}

/// `--model`: the workload, and for a sentence encoder the directory or name it comes from
/// (`None`: all-MiniLM-L6-v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelArg {
    /// The workload.
    pub kind: BenchModel,
    /// The encoder's directory or `fetch-model` name.
    pub dir: Option<PathBuf>,
}

/// `minilm`, `mlp`, `conv1d`, `demo`, or anything else as an encoder's directory or name.
fn parse_model(s: &str) -> Result<ModelArg, String> {
    let kind = <BenchModel as clap::ValueEnum>::from_str(s, true);
    Ok(match kind {
        Ok(kind) => ModelArg { kind, dir: None },
        Err(_) => ModelArg { kind: BenchModel::Minilm, dir: Some(PathBuf::from(s)) },
    })
}

/// Options of `streampool bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Devices to run on: auto, cpu, cuda, cuda:1, metal; several (cuda:0,2, cuda:all, cpu:0,1)
    /// share the engine's requests (`--engine`) or the threads (without it).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Workload: `minilm` (all-MiniLM-L6-v2), a sentence-transformers model directory, a name of
    /// `fetch-model --list` or a Hub id ORG/NAME (each run as `minilm` is), `mlp`, `conv1d` or
    /// `demo`.
    #[arg(long, default_value = "minilm", value_parser = parse_model)]
    pub model: ModelArg,
    /// Thread counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub threads: Vec<usize>,
    /// Tokens per sequence (models) or words per buffer (demo).
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Execution mode (graph: MiniLM on CUDA only).
    #[arg(long, value_enum, default_value_t = ExecMode::Eager)]
    pub mode: ExecMode,
    /// Precision.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
    /// MiniLM through an engine of this many workers (each its own stream): every thread submits
    /// batch-1 requests and the workers run what has queued as one batch. 0: every thread runs
    /// its own forwards on its own stream.
    #[arg(long, default_value_t = 0)]
    pub engine: usize,
    /// With `--engine`: microseconds an idle worker or a waiting caller polls before sleeping.
    #[arg(long, default_value_t = 1000)]
    pub engine_spin_us: u64,
    /// With `--engine`: microseconds a waiting caller polls before sleeping (default: as
    /// `--engine-spin-us`).
    #[arg(long)]
    pub engine_wait_spin_us: Option<u64>,
    /// With `--engine`: every request tokenises its text in the caller's thread before it is
    /// submitted (as the Python package and the server do), instead of reusing one encoding.
    #[arg(long)]
    pub engine_tokenize: bool,
    /// Batch size of the batched ceiling (0: skip it).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Warm-up per point, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Timed duration per point, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG plot of throughput against threads here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

struct Bench<'a>(&'a BenchArgs);

impl OnDevice for Bench<'_> {
    type Output = Report;

    fn run<B: Ops>(self, device: Device<B>) -> Result<Report, Box<dyn std::error::Error>> {
        self.run_on(vec![device])
    }

    /// Several devices: one model copy each; the engine's workers on every device, or the
    /// threads dealt round the devices.
    fn run_on<B: Ops>(self, devices: Vec<Device<B>>) -> Result<Report, Box<dyn std::error::Error>> {
        let args = self.0;
        let mode = args.mode;
        let device = &devices[0];
        if !mode.supported_on::<B>() {
            return Err(format!(
                "--mode {mode}: needs the CUDA backend (--device cuda, in a build with the cuda \
                 feature); this device is {}",
                device.backend().name()
            )
            .into());
        }
        if devices.len() > 1 && args.model.kind != BenchModel::Minilm {
            return Err("several devices: --model minilm (or a sentence encoder) only".into());
        }
        let (warmup, duration) =
            (Duration::from_secs_f64(args.warmup), Duration::from_secs_f64(args.duration));
        let points = args.threads.len() as u64 + u64::from(args.batch > 0);
        let bar = ProgressBar::new(points).with_style(
            ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} points ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let loaded = Loaded::load(&devices, args)?;
        let engine = match (&loaded, args.engine) {
            (_, 0) => None,
            (Loaded::Minilm(copies), workers) => {
                let copies =
                    copies.iter().map(|m| Arc::new(MiniLmBatches::new(m.clone(), mode))).collect();
                let spin = Duration::from_micros(args.engine_spin_us);
                let wait_spin = args.engine_wait_spin_us.map_or(spin, Duration::from_micros);
                let config =
                    EngineConfig::default().workers(workers).spin(spin).wait_spin(wait_spin);
                Some(Engine::start_on(copies, config)?)
            }
            _ => return Err("--engine: MiniLM only (--model minilm)".into()),
        };
        let mut per_thread = Vec::new();
        for &threads in &args.threads {
            bar.set_message(format!("{threads} thread(s)"));
            per_thread.push(match &engine {
                Some(engine) => engine_point(&devices, engine, args, threads, warmup, duration)?,
                None => loaded.measure(&devices, args, threads, 1, warmup, duration)?,
            });
            bar.inc(1);
        }
        let engine_stats = engine.as_ref().map(|e| (e.stats(), e.device_stats()));
        drop(engine); // gives its slots back before the batched ceiling
        let batched = if args.batch > 0 {
            // One batched caller per device: the devices' summed ceiling.
            bar.set_message(format!("batched ({})", args.batch));
            let callers = devices.len();
            let sample = loaded.measure(&devices, args, callers, args.batch, warmup, duration)?;
            bar.inc(1);
            Some(sample)
        } else {
            None
        };
        bar.finish_and_clear();
        let shares = |per_device: &[streampool_engine::DeviceStats]| -> String {
            if per_device.len() < 2 {
                return String::new();
            }
            let total = per_device.iter().map(|d| d.stats.requests).sum::<u64>().max(1) as f64;
            let parts: Vec<String> = per_device
                .iter()
                .map(|d| format!("{} {:.0}%", d.device, 100.0 * d.stats.requests as f64 / total))
                .collect();
            format!(", requests {}", parts.join(" / "))
        };
        Ok(Report {
            device: streampool_core::describe_devices(&devices),
            model: match (&loaded, engine_stats) {
                (Loaded::Minilm(m), Some((s, per_device))) => format!(
                    "{} ({mode}, engine of {} workers{}, mean batch {:.1}, largest {}{})",
                    m[0].name(),
                    args.engine,
                    if devices.len() > 1 { " per device" } else { "" },
                    s.mean_batch(),
                    s.max_batch,
                    shares(&per_device),
                ),
                (Loaded::Minilm(m), None) => format!("{} ({mode})", m[0].name()),
                _ => format!("{:?}", args.model.kind).to_lowercase(),
            },
            seq: args.seq,
            dtype: args.dtype.name().into(),
            per_thread,
            batched,
            batch: args.batch,
        })
    }
}

/// The model under test, loaded once and shared by every thread (MiniLM: a copy per device).
enum Loaded<B: Ops> {
    Minilm(Vec<Arc<MiniLm<B>>>),
    Mlp(Mlp<B>),
    Conv1d(Conv1dNet<B>),
    Demo,
}

impl<B: Ops> Loaded<B> {
    fn load(devices: &[Device<B>], args: &BenchArgs) -> Result<Self, Box<dyn std::error::Error>> {
        let device = &devices[0];
        Ok(match args.model.kind {
            BenchModel::Minilm => {
                let precision = args.dtype;
                if !precision.supported_on::<B>() {
                    return Err(format!(
                        "--dtype {precision}: not available on {} (it runs f32 only)",
                        device.backend().name()
                    )
                    .into());
                }
                let files = crate::fetch::resolve(args.model.dir.as_deref(), true)?;
                Loaded::Minilm(load_copies(devices, &files, precision)?)
            }
            BenchModel::Mlp => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("mlp.safetensors");
                synthetic::write_mlp(&path, &[384, 1536, 384], 7)?;
                Loaded::Mlp(Mlp::load(device, &path)?)
            }
            BenchModel::Conv1d => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("conv1d.safetensors");
                synthetic::write_conv1d(&path, &[64, 128, 64], 3, 7)?;
                Loaded::Conv1d(Conv1dNet::load(device, &path)?)
            }
            BenchModel::Demo => Loaded::Demo,
        })
    }

    /// One point: `threads` threads, each request `batch` items; thread `t` on device
    /// `t % devices.len()` (several devices: MiniLM only, see `run_on`).
    fn measure(
        &self,
        devices: &[Device<B>],
        args: &BenchArgs,
        threads: usize,
        batch: usize,
        warmup: Duration,
        duration: Duration,
    ) -> Result<measure::Sample, String> {
        use workloads::{MiniLmWorker, SmallModel, SmallModelWorker};
        let one = &devices[..1];
        let run = |threads| match self {
            Loaded::Minilm(copies) => {
                measure::run_threads(devices, threads, warmup, duration, |t| {
                    MiniLmWorker::new(&copies[t % copies.len()], args.seq, batch, args.mode)
                })
            }
            Loaded::Mlp(m) => measure::run_threads(one, threads, warmup, duration, |_| {
                Ok(SmallModelWorker::new(SmallModel::Mlp(m), batch, 1))
            }),
            Loaded::Conv1d(m) => measure::run_threads(one, threads, warmup, duration, |_| {
                Ok(SmallModelWorker::new(SmallModel::Conv1d(m), batch, args.seq))
            }),
            Loaded::Demo => measure::run_threads(one, threads, warmup, duration, |_| {
                workloads::DemoWorker::new(&devices[0], args.seq, batch)
            }),
        };
        run(threads)
    }
}

/// One point through the engine: `threads` callers, each submitting batch-1 requests (a text of
/// `--seq` tokens) and waiting for each answer.
fn engine_point<B: Ops>(
    devices: &[Device<B>],
    engine: &Engine<MiniLmBatches<B>>,
    args: &BenchArgs,
    threads: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<measure::Sample, String> {
    let encoding = workloads::encoding_of_len(engine.model().model(), args.seq)?;
    if args.engine_tokenize {
        let text = workloads::text_of_len(engine.model().model(), args.seq)?;
        let setup = |_| Ok(());
        let request = |_: &mut ()| {
            let encoding = engine.model().encode(&text).map_err(|e| e.to_string())?;
            engine.call(encoding).map(|_| 1).map_err(|e| e.to_string())
        };
        return measure::run_callers(devices, threads, warmup, duration, setup, request);
    }
    let setup = |_| Ok(encoding.clone());
    let request = |e: &mut Encoding| engine.call(e.clone()).map(|_| 1).map_err(|e| e.to_string());
    measure::run_callers(devices, threads, warmup, duration, setup, request)
}

/// Run `streampool bench`.
pub fn run(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.threads.is_empty() || args.threads.contains(&0) {
        return Err("--threads needs thread counts of at least 1, e.g. --threads 1,2,4".into());
    }
    if args.dtype != Precision::F32 && args.model.kind != BenchModel::Minilm {
        return Err(format!(
            "--dtype {}: only --model minilm has reduced-precision modes (not {:?})",
            args.dtype, args.model.kind
        )
        .to_lowercase()
        .into());
    }
    if args.mode == ExecMode::Graph && args.model.kind != BenchModel::Minilm {
        return Err(format!(
            "--mode graph: only --model minilm has a graph mode (not {:?})",
            args.model.kind
        )
        .to_lowercase()
        .into());
    }
    if args.seq == 0 || args.duration <= 0.0 || args.warmup < 0.0 {
        return Err("--seq and --duration must be positive, --warmup not negative".into());
    }
    let capacity = args.threads.iter().copied().max().unwrap_or(1).max(32);
    let report =
        with_device(args.device.clone(), PoolConfig::with_capacity(capacity), Bench(args))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, report.svg())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_a_workload_or_an_encoder() {
        for (arg, kind, dir) in [
            ("minilm", BenchModel::Minilm, None),
            ("MLP", BenchModel::Mlp, None),
            ("demo", BenchModel::Demo, None),
            (
                "fixtures/tiny-models/bert-cls",
                BenchModel::Minilm,
                Some("fixtures/tiny-models/bert-cls"),
            ),
            ("sre-embedding-model", BenchModel::Minilm, Some("sre-embedding-model")),
        ] {
            let got = parse_model(arg).unwrap();
            assert_eq!(
                (got.kind, got.dir.as_deref()),
                (kind, dir.map(std::path::Path::new)),
                "{arg}"
            );
        }
    }

    /// The bench text is exactly `--seq` tokens for any vocabulary (a WordPiece BERT and a
    /// unigram XLM-RoBERTa tiny model), ending with the closing special token.
    #[test]
    fn bench_encodings_of_any_vocabulary() {
        let device = Device::new(
            streampool_cpu::CpuBackend::new(),
            streampool_core::PoolConfig::with_capacity(2),
        );
        for name in ["bert-mean", "xlm-roberta-mean"] {
            let dir = streampool_models::testing::tiny_models_dir().join(name);
            let model =
                MiniLm::load(&device, &streampool_models::loading::locate_model(&dir).unwrap())
                    .unwrap();
            let full = model.tokenizer().encode("word").unwrap();
            for seq in [3, 17, model.tokenizer().max_seq_length()] {
                let e = workloads::encoding_of_len(&model, seq).unwrap();
                assert_eq!(
                    (e.len(), e.attention_mask.len(), e.token_type_ids.len()),
                    (seq, seq, seq)
                );
                assert_eq!(e.input_ids.last(), full.input_ids.last(), "{name}: closing token");
                assert_eq!(e.input_ids[0], full.input_ids[0], "{name}: opening token");
            }
            assert!(workloads::encoding_of_len(&model, 2).is_err());
            assert!(workloads::encoding_of_len(&model, 1000).is_err());
        }
    }

    /// `--engine-tokenize`'s text is exactly `--seq` tokens in MiniLM's vocabulary; where the
    /// words are not one token each, an error says so.
    #[test]
    fn the_text_to_tokenise_has_the_asked_length() {
        let device = Device::new(
            streampool_cpu::CpuBackend::new(),
            streampool_core::PoolConfig::with_capacity(2),
        );
        let Some(files) = streampool_models::testing::default_model() else { return };
        let model = MiniLm::load(&device, files).unwrap();
        for seq in [3, 128, 256] {
            let text = workloads::text_of_len(&model, seq).unwrap();
            assert_eq!(model.tokenizer().encode(&text).unwrap().len(), seq);
        }
        let dir = streampool_models::testing::tiny_models_dir().join("xlm-roberta-mean");
        let files = streampool_models::loading::locate_model(&dir).unwrap();
        let tiny = MiniLm::load(&device, &files).unwrap();
        match workloads::text_of_len(&tiny, 40) {
            Ok(text) => assert_eq!(tiny.tokenizer().encode(&text).unwrap().len(), 40),
            Err(e) => assert!(e.contains("not 40"), "{e}"),
        }
    }
}
