//! `streampool embed`: a corpus of texts in (a JSON array, JSON Lines or plain text; a file or
//! stdin), embeddings out (a JSON array, JSON Lines or a `.npy` array; stdout or a file), in
//! input order, streamed through [`streampool_engine::corpus`]: tokenised on every core, packed
//! by length, run on several streams at once.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use streampool_core::{Device, PoolConfig};
use streampool_engine::corpus::{embed_corpus_on, CorpusConfig, CorpusStats};
use streampool_engine::npy::NpyDtype;
use streampool_engine::output::{BackgroundWriter, EmbeddingWriter, JsonLayout, JsonWriter};
use streampool_engine::texts::{Format, JsonArray, TextError, Texts};
use streampool_engine::MiniLmBatches;
use streampool_models::graph::ExecMode;
use streampool_models::loading::{self, ModelFiles};
use streampool_models::Precision;
use streampool_tensor::Ops;

use crate::device::{load_copies, with_device, DeviceChoice, OnDevice};

/// Options of `streampool embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// The texts: a file, or stdin when absent.
    pub input: Option<PathBuf>,
    /// Devices to run on: auto, cpu, cuda, cuda:1, metal; several spread the batches over
    /// them: cuda:0,2, cuda:all (cpu:0,1 for testing).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Model directory (sentence-transformers layout: BERT, RoBERTa, XLM-RoBERTa, MPNet or
    /// Gemma-3 encoders, any pooling, Dense modules), the name of a model `fetch-model --list` shows
    /// (fetched on first use), or a Hugging Face Hub id ORG/NAME (downloaded into the Hub's
    /// cache where the Hub is reachable). Default: all-MiniLM-L6-v2.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// How the input holds its texts.
    #[arg(long = "format-in", value_enum, default_value_t = InputFormat::Json)]
    pub format_in: InputFormat,
    /// With `--format-in jsonl`: the member of each line's object that holds the text.
    #[arg(long)]
    pub field: Option<String>,
    /// With `--format-in jsonl|text`: skip a bad line (reported on stderr, counted) instead of
    /// stopping at it.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Write the embeddings to this file instead of stdout (needed for `--format npy`).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// How the embeddings are written.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// With `--format npy`: the array's element type.
    #[arg(long, value_enum, default_value_t = NpyDtype::F32)]
    pub npy_dtype: NpyDtype,
    /// Numeric precision of the model: `auto` is f16 on CUDA, f32 on the CPU (which runs only
    /// f32).
    #[arg(long, value_enum, default_value_t = DtypeChoice::Auto)]
    pub dtype: DtypeChoice,
    /// How each batch runs: op by op, or by replaying CUDA graphs captured per shape bucket.
    #[arg(long, value_enum, default_value_t = ExecMode::Eager)]
    pub mode: ExecMode,
    /// Streams working at once. Default: 8 on CUDA, 1 on the CPU (whose kernels use every
    /// core already).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Padded tokens (texts × padded length) per batch at most. Default: 32,768 on CUDA (large
    /// GEMMs; the most a batch runs as one chunk), 1,024 on the CPU (small batches pad less, and
    /// the CPU gains nothing from more).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_batch_tokens: Option<u32>,
    /// Texts sorted by length and packed together: larger pads less and holds more in memory.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Prepend the model's prompt of this name to every text (its
    /// `config_sentence_transformers.json`: `query`, `document`, ...). Default: the model's
    /// default prompt, if it has one.
    #[arg(long, conflicts_with = "prompt")]
    pub prompt_name: Option<String>,
    /// Prepend this text to every text.
    #[arg(long)]
    pub prompt: Option<String>,
    /// No progress bar and no summary on stderr (skipped lines are still reported).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--format-in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One JSON array of strings.
    Json,
    /// JSON Lines: a string per line, or an object per line with the text in `--field`.
    Jsonl,
    /// A text per line.
    Text,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON array of arrays.
    Json,
    /// One JSON array per line.
    Jsonl,
    /// A NumPy `.npy` array of shape [texts, dim] (needs `--output`).
    Npy,
}

/// `--dtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeChoice {
    /// f16 where the backend runs it (CUDA), else f32.
    Auto,
    /// f32 storage and products.
    F32,
    /// f32 storage, TF32 products (CUDA).
    Tf32,
    /// IEEE half storage (CUDA).
    F16,
    /// bfloat16 storage (CUDA).
    Bf16,
}

impl DtypeChoice {
    /// The precision on backend `B`.
    pub fn resolve<B: Ops>(self) -> Precision {
        match self {
            Self::Auto if Precision::F16.supported_on::<B>() => Precision::F16,
            Self::Auto | Self::F32 => Precision::F32,
            Self::Tf32 => Precision::Tf32,
            Self::F16 => Precision::F16,
            Self::Bf16 => Precision::Bf16,
        }
    }
}

/// A bad input line, with the input's name.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {source}")]
struct InputError {
    name: String,
    #[source]
    source: TextError,
}

/// The input's texts, streamed.
type TextStream = Box<dyn Iterator<Item = Result<String, InputError>> + Send>;

/// A reader that counts the bytes read through it (for the progress bar).
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What the input is: its texts, its name, its size when known, the bytes read so far, and the
/// lines skipped so far.
struct Input {
    texts: TextStream,
    size: Option<u64>,
    read: Arc<AtomicU64>,
    skipped: Arc<AtomicUsize>,
}

/// Open the input `args` name.
fn open_input(args: &EmbedArgs) -> Result<Input, Box<dyn std::error::Error>> {
    let format = match args.format_in {
        InputFormat::Json if args.field.is_some() || args.skip_invalid => {
            return Err("--field and --skip-invalid go with --format-in jsonl or text".into());
        }
        InputFormat::Json => None,
        InputFormat::Jsonl => Some(Format::JsonLines { field: args.field.clone() }),
        InputFormat::Text if args.field.is_some() => {
            return Err("--field goes with --format-in jsonl".into());
        }
        InputFormat::Text => Some(Format::Text),
    };
    let (reader, name, size): (Box<dyn Read + Send>, String, Option<u64>) = match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), path.display().to_string(), size)
        }
        None => (Box::new(std::io::stdin()), "<stdin>".to_owned(), None),
    };
    let read = Arc::new(AtomicU64::new(0));
    let skipped = Arc::new(AtomicUsize::new(0));
    let counted = Counting { inner: reader, bytes: read.clone() };
    let texts: TextStream = match format {
        None => {
            let name = name.clone();
            let array = JsonArray::spawn(counted)?;
            Box::new(
                array.map(move |r| r.map_err(|source| InputError { name: name.clone(), source })),
            )
        }
        Some(format) => {
            let (skip, skipped) = (args.skip_invalid, skipped.clone());
            let lines = Texts::new(std::io::BufReader::with_capacity(1 << 16, counted), format);
            Box::new(lines.filter_map(move |r| match r {
                Ok(text) => Some(Ok(text.text)),
                Err(e) if skip && !matches!(e, TextError::Io { .. }) => {
                    eprintln!("skipped {name}: {e}");
                    skipped.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(source) => Some(Err(InputError { name: name.clone(), source })),
            }))
        }
    };
    Ok(Input { texts, size, read, skipped })
}

/// `path` created (truncated) for buffered writing, or an error naming it.
fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, String> {
    let file =
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(std::io::BufWriter::with_capacity(1 << 20, file))
}

/// The writer `args` ask for, of rows of `dim`.
type Writer = EmbeddingWriter<Box<dyn Write>, std::io::BufWriter<std::fs::File>>;

fn open_output(args: &EmbedArgs, dim: usize) -> Result<Writer, Box<dyn std::error::Error>> {
    let layout = match args.format {
        OutputFormat::Npy => {
            let Some(path) = &args.output else {
                return Err("--format npy writes a file: give it with --output FILE".into());
            };
            return Ok(EmbeddingWriter::npy(create(path)?, dim, args.npy_dtype)?);
        }
        OutputFormat::Json => JsonLayout::Array,
        OutputFormat::Jsonl => JsonLayout::Lines,
    };
    // Written on a thread of its own: formatting the next chunk overlaps writing this one.
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BackgroundWriter::spawn(create(path)?)?),
        None => Box::new(BackgroundWriter::spawn(std::io::stdout())?),
    };
    Ok(EmbeddingWriter::Json(JsonWriter::new(out, layout)))
}

/// The progress bar: input bytes when the size is known, else a spinner; hidden with
/// `--quiet` or when stderr is not a terminal.
fn progress_bar(size: Option<u64>, quiet: bool) -> ProgressBar {
    let bar = match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("embedding [{bar:30}] {percent:>3}% {msg} ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("embedding {spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr_with_hz(4)
    });
    bar
}

/// The run on whichever device `--device` opened.
struct Embed<'a> {
    args: &'a EmbedArgs,
    files: &'a ModelFiles,
    input: Input,
    output: Writer,
}

/// What a run did, for the summary.
struct Run {
    stats: CorpusStats,
    precision: Precision,
    workers: usize,
    /// The devices' labels.
    devices: String,
}

impl OnDevice for Embed<'_> {
    type Output = Run;

    fn run<B: Ops>(self, device: Device<B>) -> Result<Run, Box<dyn std::error::Error>> {
        self.run_on(vec![device])
    }

    /// One copy of the model per device; every device's streams take the batches.
    fn run_on<B: Ops>(self, devices: Vec<Device<B>>) -> Result<Run, Box<dyn std::error::Error>> {
        let Self { args, files, input, output } = self;
        let backend = devices[0].backend().kind();
        if !args.mode.supported_on::<B>() {
            return Err(format!("--mode {} does not run on {backend}", args.mode).into());
        }
        let precision = args.dtype.resolve::<B>();
        let models = load_copies(&devices, files, precision)?;
        let prompt = match &args.prompt {
            Some(text) => Some(text.clone()).filter(|t| !t.is_empty()),
            None => models[0].prompt(args.prompt_name.as_deref())?.map(str::to_owned),
        };
        let copies: Vec<MiniLmBatches<B>> = models
            .into_iter()
            .map(|m| MiniLmBatches::new(m, args.mode).with_prompt(prompt.clone()))
            .collect();
        let config = corpus_config(args, backend);
        let stats = pipeline(&copies, &config, input, output, args.quiet)?;
        Ok(Run {
            stats,
            precision,
            workers: config.workers,
            devices: streampool_core::labels(&devices),
        })
    }
}

/// The corpus run `args` ask for on `backend`: 8 streams and batches of 32,768 padded tokens on
/// a GPU, one stream and 1,024 tokens on the CPU, unless told otherwise.
fn corpus_config(args: &EmbedArgs, backend: &str) -> CorpusConfig {
    let (workers, max_batch_tokens) = if backend == "cpu" { (1, 1024) } else { (8, 32_768) };
    CorpusConfig {
        workers: args.workers.map_or(workers, usize::from),
        window: args.window as usize,
        max_batch_tokens: args.max_batch_tokens.map_or(max_batch_tokens, |t| t as usize),
        ..CorpusConfig::default()
    }
}

/// `input` through the corpus pipeline into `output`, with a progress bar unless `quiet`.
fn pipeline<B: Ops>(
    copies: &[MiniLmBatches<B>],
    config: &CorpusConfig,
    input: Input,
    mut output: Writer,
    quiet: bool,
) -> Result<CorpusStats, Box<dyn std::error::Error>> {
    let bar = progress_bar(input.size, quiet);
    let read = input.read.clone();
    let copies: Vec<&MiniLmBatches<B>> = copies.iter().collect();
    let result = embed_corpus_on(
        &copies,
        config,
        input.texts,
        |rows| output.write_rows(rows),
        |s| {
            bar.set_position(read.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} texts, {:.0} texts/s, {:.0} tokens/s",
                s.texts,
                s.texts_per_second(),
                s.tokens_per_second()
            ));
        },
    );
    bar.finish_and_clear();
    // The rows written are every text before the error: keep them a well-formed output.
    let finished = output.finish();
    let stats = result?;
    finished?;
    Ok(stats)
}

/// [`run`]'s corpus job with a model already loaded, a copy per device (the Python package's
/// `embed_file`): the
/// input and output `args` name, the streams and batch sizes they ask for; `args.device`,
/// `args.model`, `args.dtype`, `args.mode` and the prompt options are the model's already and
/// are not read. Skipped lines (`skip_invalid`) are reported on stderr.
pub fn embed_with<B: Ops>(
    copies: &[MiniLmBatches<B>],
    args: &EmbedArgs,
) -> Result<CorpusStats, Box<dyn std::error::Error>> {
    check_formats(args)?;
    let model = copies.first().ok_or("no model was given")?.model();
    let output = open_output(args, model.config().output_dim())?;
    let input = open_input(args)?;
    let config = corpus_config(args, model.device().backend().kind());
    pipeline(copies, &config, input, output, args.quiet)
}

/// Options that do not go together, refused before anything is read or loaded.
fn check_formats(args: &EmbedArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.format != OutputFormat::Npy && args.npy_dtype != NpyDtype::F32 {
        return Err("--npy-dtype goes with --format npy".into());
    }
    Ok(())
}

/// Run `streampool embed`.
pub fn run(args: &EmbedArgs) -> Result<(), Box<dyn std::error::Error>> {
    check_formats(args)?;
    let files = crate::fetch::resolve(args.model.as_deref(), args.quiet)?;
    let dim = loading::ModelConfig::load(&files)?.output_dim();
    let output = open_output(args, dim)?;
    let input = open_input(args)?;
    let skipped = input.skipped.clone();
    // Enough slots for the workers and the upload's lease.
    let pool = PoolConfig::with_capacity(args.workers.map_or(8, usize::from) + 1);
    let result =
        with_device(args.device.clone(), pool, Embed { args, files: &files, input, output });
    let skipped = match skipped.load(Ordering::Relaxed) {
        0 => String::new(),
        n => format!("; skipped {n} invalid line{}", if n == 1 { "" } else { "s" }),
    };
    let run = match result {
        Ok(run) => run,
        Err(e) if skipped.is_empty() || args.quiet => return Err(e),
        Err(e) => return Err(format!("{e}{skipped}").into()),
    };
    if !args.quiet {
        let s = run.stats;
        eprintln!(
            "embedded {} texts ({} tokens, {:.1}% padding) in {:.2} s: {:.0} texts/s, {:.0} \
             tokens/s ({}, {}, {} stream{} on {}){skipped}",
            s.texts,
            s.tokens,
            100.0 * s.padding_share(),
            s.elapsed.as_secs_f64(),
            s.texts_per_second(),
            s.tokens_per_second(),
            run.precision,
            args.mode,
            run.workers,
            if run.workers == 1 { "" } else { "s" },
            match run.devices.contains(',') {
                true => format!("each of {}", run.devices),
                false => run.devices,
            },
        );
    }
    Ok(())
}
