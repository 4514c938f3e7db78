//! `streampool._streampool`: the native module of the `streampool` Python package.
//!
//! One `Model` is one loaded model behind a batching engine: any number of Python threads call
//! it at once; each call tokenises in the calling thread and submits its texts to the engine,
//! whose workers (each on its own stream) run whatever has queued, from every thread, as one
//! batch. Every call releases the GIL for the whole computation (tokenising, queueing, waiting,
//! the corpus pipeline), so Python threads run in parallel; results come back as NumPy arrays.
//!
//! Errors become Python exceptions with the Rust error's message: `ValueError` for bad input (a
//! text the model refuses, an unknown model name, a bad file line or option), `RuntimeError`
//! for everything else. A Rust panic becomes PyO3's `PanicException`, never an abort.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use streampool_cli::device::{load_copies, with_device, DeviceChoice, OnDevice};
use streampool_cli::embed::{embed_with, DtypeChoice, EmbedArgs, InputFormat, OutputFormat};
use streampool_core::{Device, PoolConfig};
use streampool_engine::corpus::CorpusStats;
use streampool_engine::npy::NpyDtype;
use streampool_engine::{Engine, EngineConfig, EngineError, MiniLmBatches};
use streampool_models::graph::ExecMode;
use streampool_models::loading::Encoding;
use streampool_models::ModelError;
use streampool_tensor::Ops;

/// Texts submitted to the engine before the call waits for them: bounds the queue a single
/// large call takes, so other threads' requests interleave with it.
const CHUNK: usize = 512;

/// A failure, as the Python exception it becomes.
#[derive(Debug)]
enum Failure {
    /// `ValueError`: the caller's input is wrong.
    Input(String),
    /// `RuntimeError`: anything else.
    Runtime(String),
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Input(m) => PyValueError::new_err(m),
            Failure::Runtime(m) => PyRuntimeError::new_err(m),
        }
    }
}

/// A model error: input problems (an empty batch, an input the model refuses, a model or a
/// precision this build does not run) are the caller's.
fn model_failure(e: ModelError) -> Failure {
    match e {
        ModelError::EmptyBatch
        | ModelError::InvalidInput { .. }
        | ModelError::InputLength { .. }
        | ModelError::Unsupported { .. } => Failure::Input(e.to_string()),
        other => Failure::Runtime(other.to_string()),
    }
}

fn engine_failure(e: EngineError<ModelError>) -> Failure {
    match e {
        EngineError::Invalid(e) => model_failure(e),
        other => Failure::Runtime(other.to_string()),
    }
}

/// What `Model.info` reports.
#[derive(Debug, Clone)]
struct Info {
    name: String,
    dimension: usize,
    max_tokens: usize,
    device: String,
    backend: &'static str,
    dtype: String,
    workers: usize,
}

/// Embeddings, one row per text.
type Rows = Vec<Vec<f32>>;

/// The prompt of a call: a text given, or the model's prompt of a name (its default prompt, if
/// any, for `None`).
#[derive(Clone, Copy)]
enum Prompt<'a> {
    Text(&'a str),
    Named(Option<&'a str>),
}

/// A loaded model on some backend (the backend is chosen at run time).
trait Embedder: Send + Sync {
    /// Embeddings of `texts` (after the prompt), in order, through the engine.
    fn embed(&self, texts: &[String], prompt: Prompt<'_>, progress: bool) -> Result<Rows, Failure>;
    /// The corpus job `args` describe, with this model.
    fn embed_file(&self, args: &EmbedArgs) -> Result<CorpusStats, Failure>;
    fn info(&self) -> Info;
}

/// [`Embedder`] on backend `B`.
struct Loaded<B: Ops> {
    /// The model on each device (the engine holds them too; `embed_file` runs its own workers).
    copies: Vec<MiniLmBatches<B>>,
    engine: Engine<MiniLmBatches<B>>,
    info: Info,
}

impl<B: Ops> Embedder for Loaded<B> {
    fn embed(&self, texts: &[String], prompt: Prompt<'_>, progress: bool) -> Result<Rows, Failure> {
        let model = self.copies[0].model();
        let prompt = match prompt {
            Prompt::Text(text) => Some(text),
            Prompt::Named(name) => model.prompt(name).map_err(model_failure)?,
        };
        // Tokenised on every core (the GIL is released), with the prompt's tokens left out of
        // the pooling where the model says so.
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings =
            model.encode_prompted(&refs, prompt).map_err(|e| Failure::Input(e.to_string()))?;
        // Longest first, so that the engine's batches (consecutive requests) hold texts of
        // like lengths: little padding. Results go back to input order.
        let mut sorted: Vec<(usize, Encoding)> = encodings.into_iter().enumerate().collect();
        sorted.sort_by_key(|(_, e)| std::cmp::Reverse(e.len()));
        let mut sorted = sorted.into_iter();
        let mut out = vec![Vec::new(); texts.len()];
        let bar = progress_bar(texts.len(), progress);
        loop {
            let mut pending = Vec::with_capacity(CHUNK);
            for (i, encoding) in sorted.by_ref().take(CHUNK) {
                pending.push((i, self.engine.submit(encoding).map_err(engine_failure)?));
            }
            if pending.is_empty() {
                break;
            }
            let done = pending.len() as u64;
            for (i, p) in pending {
                out[i] = p.wait().map_err(engine_failure)?;
            }
            bar.inc(done);
        }
        bar.finish_and_clear();
        Ok(out)
    }

    fn embed_file(&self, args: &EmbedArgs) -> Result<CorpusStats, Failure> {
        // The pipeline's own errors (a bad line, a missing file, an option that does not go
        // with another) are the caller's; the model's are classified as in `embed`.
        embed_with(&self.copies, args).map_err(|e| match e.downcast::<ModelError>() {
            Ok(e) => model_failure(*e),
            Err(e) => Failure::Input(e.to_string()),
        })
    }

    fn info(&self) -> Info {
        self.info.clone()
    }
}

/// A progress bar on stderr for `n` texts (hidden when not asked for).
fn progress_bar(n: usize, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let style =
        indicatif::ProgressStyle::with_template("embedding [{bar:30}] {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    indicatif::ProgressBar::new(n as u64).with_style(style)
}

/// The job that loads the model on whichever backend the device choice opens.
struct Load {
    files: streampool_models::loading::ModelFiles,
    dtype: DtypeChoice,
    workers: Option<usize>,
    /// The engine's polls (`None`: the defaults), from the environment.
    spin: Option<Duration>,
    wait_spin: Option<Duration>,
}

impl OnDevice for Load {
    type Output = Box<dyn Embedder>;

    fn run<B: Ops>(self, device: Device<B>) -> Result<Self::Output, Box<dyn std::error::Error>> {
        self.run_on(vec![device])
    }

    /// One copy of the model per device, one engine over them all.
    fn run_on<B: Ops>(
        self,
        devices: Vec<Device<B>>,
    ) -> Result<Self::Output, Box<dyn std::error::Error>> {
        let backend = devices[0].backend().kind();
        let on_cpu = backend == "cpu";
        let precision = self.dtype.resolve::<B>();
        let workers = self.workers.unwrap_or(if on_cpu { 1 } else { 4 }).max(1);
        let models = load_copies(&devices, &self.files, precision)?;
        let model = &models[0];
        let info = Info {
            name: model.name().to_owned(),
            dimension: model.config().output_dim(),
            max_tokens: model.config().max_seq_length,
            device: streampool_core::describe_devices(&devices),
            backend,
            dtype: precision.to_string(),
            workers,
        };
        let copies: Vec<Arc<MiniLmBatches<B>>> =
            models.into_iter().map(|m| Arc::new(MiniLmBatches::new(m, ExecMode::Eager))).collect();
        // Spinning workers would take the cores the CPU backend computes on.
        let spin =
            self.spin.unwrap_or(if on_cpu { Duration::ZERO } else { EngineConfig::default().spin });
        let wait_spin = self.wait_spin.unwrap_or(spin);
        let config = EngineConfig {
            workers,
            // A large call waits for room rather than failing: a library call, not a server.
            queue_capacity: 4 * CHUNK,
            submit_timeout: Duration::from_secs(24 * 3600),
            spin,
            wait_spin,
            // Padded tokens per batch: on the CPU a long text runs alone rather than padding
            // short ones to its length (the server's choice too).
            max_batch_tokens: if on_cpu { 256 } else { 16_384 },
            ..EngineConfig::default()
        };
        let engine = Engine::start_on(copies.clone(), config)?;
        let copies = copies.iter().map(|c| MiniLmBatches::clone(c)).collect();
        Ok(Box::new(Loaded { copies, engine, info }))
    }
}

/// One shared model: see the module documentation.
#[pyclass(frozen, module = "streampool._streampool")]
struct Model {
    inner: Box<dyn Embedder>,
    /// The embeddings' width (read on every call, so kept apart from `info`'s strings).
    dimension: usize,
    /// The process that loaded the model: a child made by `fork` inherits the object but not
    /// the engine's worker threads or the device's state, so its calls would wait for ever.
    pid: u32,
}

/// A duration in microseconds from environment variable `name`, if set.
fn micros_from_env(name: &str) -> Result<Option<Duration>, Failure> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map(|us| Some(Duration::from_micros(us))).map_err(|_| {
            Failure::Input(format!("{name}={v:?}: expected a whole number of microseconds"))
        }),
        Err(_) => Ok(None),
    }
}

/// `device=` as the CLI's `--device` (`"cuda:0,2"`, `"cuda:all"` for several GPUs).
fn device_choice(name: &str) -> Result<DeviceChoice, Failure> {
    name.parse().map_err(|e| Failure::Input(format!("device={name:?}: {e}")))
}

/// `dtype=` as the CLI's `--dtype`.
fn dtype_choice(name: &str) -> Result<DtypeChoice, Failure> {
    match name {
        "auto" => Ok(DtypeChoice::Auto),
        "f32" | "float32" => Ok(DtypeChoice::F32),
        "tf32" => Ok(DtypeChoice::Tf32),
        "f16" | "float16" => Ok(DtypeChoice::F16),
        "bf16" | "bfloat16" => Ok(DtypeChoice::Bf16),
        other => Err(Failure::Input(format!(
            "dtype={other:?}: expected \"auto\", \"float32\", \"tf32\", \"float16\" or \"bfloat16\""
        ))),
    }
}

impl Model {
    /// `RuntimeError` in a process forked after the model was loaded (instead of a hang).
    fn same_process(&self) -> Result<(), Failure> {
        if std::process::id() == self.pid {
            return Ok(());
        }
        Err(Failure::Runtime(format!(
            "this Model was loaded in process {} and cannot run in a child forked from it (its \
             engine threads and device state stay in the parent): load a Model in the child, \
             or start children with the 'spawn' method",
            self.pid
        )))
    }
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (model = None, device = "auto", dtype = "auto", workers = None, quiet = true))]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        device: &str,
        dtype: &str,
        workers: Option<usize>,
        quiet: bool,
    ) -> PyResult<Self> {
        let device = device_choice(device)?;
        let dtype = dtype_choice(dtype)?;
        let spin = micros_from_env("STREAMPOOL_SPIN_US")?;
        let wait_spin = micros_from_env("STREAMPOOL_WAIT_SPIN_US")?;
        let inner = py.detach(|| -> Result<Box<dyn Embedder>, Failure> {
            let files = streampool_cli::fetch::resolve(model.as_deref(), quiet)
                .map_err(|e| Failure::Input(e.to_string()))?;
            // Room for the engine's workers, a corpus job's and the upload's lease.
            let slots = 2 * workers.unwrap_or(8).max(1) + 2;
            with_device(
                device,
                PoolConfig::with_capacity(slots),
                Load { files, dtype, workers, spin, wait_spin },
            )
            .map_err(|e| match e.downcast::<ModelError>() {
                Ok(e) => model_failure(*e),
                Err(e) => Failure::Runtime(e.to_string()),
            })
        })?;
        let dimension = inner.info().dimension;
        Ok(Self { inner, dimension, pid: std::process::id() })
    }

    /// Embeddings of `texts` (a str, or a list of str), float32 `[len(texts), dimension]`, in
    /// order; `prompt` (a text) or `prompt_name` (the model's) prepended.
    #[pyo3(signature = (texts, *, prompt = None, prompt_name = None, show_progress_bar = false))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        prompt: Option<String>,
        prompt_name: Option<String>,
        show_progress_bar: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        self.same_process()?;
        // Everything under the GIL is kept to the conversions in and out: the Python threads
        // of a busy model take turns here.
        let texts: Vec<String> = match texts.cast::<PyString>() {
            Ok(one) => vec![one.extract::<String>()?],
            Err(_) => texts.extract()?,
        };
        let dim = self.dimension;
        let prompt = match &prompt {
            Some(text) => Prompt::Text(text),
            None => Prompt::Named(prompt_name.as_deref()),
        };
        let array = py.detach(|| -> Result<Array2<f32>, Failure> {
            let rows = match texts.is_empty() {
                true => Vec::new(),
                false => self.inner.embed(&texts, prompt, show_progress_bar)?,
            };
            let flat: Vec<f32> = rows.into_iter().flatten().collect();
            Array2::from_shape_vec((texts.len(), dim), flat)
                .map_err(|e| Failure::Runtime(format!("embeddings of the wrong width: {e}")))
        })?;
        Ok(array.into_pyarray(py))
    }

    /// The corpus pipeline on a file: see the package's `Model.embed_file`.
    #[pyo3(signature = (path, output, format = "npy", input_format = "jsonl", field = None,
                        skip_invalid = false, npy_dtype = "f32", workers = None,
                        max_batch_tokens = None, show_progress_bar = false))]
    #[allow(clippy::too_many_arguments)] // the CLI's options, as keyword arguments
    fn embed_file(
        &self,
        py: Python<'_>,
        path: PathBuf,
        output: PathBuf,
        format: &str,
        input_format: &str,
        field: Option<String>,
        skip_invalid: bool,
        npy_dtype: &str,
        workers: Option<u16>,
        max_batch_tokens: Option<u32>,
        show_progress_bar: bool,
    ) -> PyResult<(usize, usize, f64)> {
        let format = match format {
            "npy" => OutputFormat::Npy,
            "json" => OutputFormat::Json,
            "jsonl" => OutputFormat::Jsonl,
            other => {
                return Err(Failure::Input(format!(
                    "format={other:?}: expected \"npy\", \"json\" or \"jsonl\""
                ))
                .into())
            }
        };
        let format_in = match input_format {
            "jsonl" => InputFormat::Jsonl,
            "json" => InputFormat::Json,
            "text" => InputFormat::Text,
            other => {
                return Err(Failure::Input(format!(
                    "input_format={other:?}: expected \"jsonl\", \"json\" or \"text\""
                ))
                .into())
            }
        };
        let npy_dtype = match npy_dtype {
            "f32" | "float32" => NpyDtype::F32,
            "f16" | "float16" => NpyDtype::F16,
            other => {
                return Err(Failure::Input(format!(
                    "npy_dtype={other:?}: expected \"float32\" or \"float16\""
                ))
                .into())
            }
        };
        let args = EmbedArgs {
            input: Some(path),
            device: DeviceChoice::Auto,
            model: None,
            format_in,
            field,
            skip_invalid,
            output: Some(output),
            format,
            npy_dtype,
            dtype: DtypeChoice::Auto,
            mode: ExecMode::Eager,
            workers,
            max_batch_tokens,
            window: 8192,
            prompt_name: None,
            prompt: None,
            quiet: !show_progress_bar,
        };
        self.same_process()?;
        let stats = py.detach(|| self.inner.embed_file(&args))?;
        Ok((stats.texts, stats.tokens, stats.elapsed.as_secs_f64()))
    }

    /// `(name, dimension, max_tokens, device, backend, dtype, workers)`.
    #[getter]
    fn info(&self) -> (String, usize, usize, String, &'static str, String, usize) {
        let i = self.inner.info();
        (i.name, i.dimension, i.max_tokens, i.device, i.backend, i.dtype, i.workers)
    }
}

#[pymodule]
fn _streampool(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
