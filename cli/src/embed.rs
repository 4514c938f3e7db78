//! `streampool embed`: texts in (a JSON array, JSON Lines or plain text; a file or stdin),
//! embeddings out (a JSON array, JSON Lines or a `.npy` array; stdout or a file), in input order.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use streampool_core::{Device, PoolConfig};
use streampool_models::loading::{self, ModelFiles};
use streampool_models::MiniLm;
use streampool_tensor::Ops;

use streampool_engine::npy::{NpyDtype, NpyWriter};
use streampool_engine::texts::{Format, TextError, Texts};

use crate::device::{with_device, DeviceChoice, OnDevice};
use crate::input::read_texts;

/// Texts per call to the model; also the progress bar's step.
const CHUNK: usize = 32;

/// Options of `streampool embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// JSON file holding an array of strings; stdin when absent.
    pub input: Option<PathBuf>,
    /// Device to run on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Model directory (sentence-transformers layout). Default: the cached all-MiniLM-L6-v2,
    /// fetched on first use.
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

struct Embed<'a> {
    files: &'a ModelFiles,
    texts: &'a [String],
}

impl OnDevice for Embed<'_> {
    type Output = Vec<Vec<f32>>;

    fn run<B: Ops>(self, device: Device<B>) -> Result<Self::Output, Box<dyn std::error::Error>> {
        let model = MiniLm::load(&device, self.files)?;
        let lease = device.acquire()?;
        let bar = ProgressBar::new(self.texts.len() as u64).with_style(
            ProgressStyle::with_template("embedding [{bar:30}] {pos}/{len} texts ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        if self.texts.len() <= 2 * CHUNK {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut out = Vec::with_capacity(self.texts.len());
        for chunk in self.texts.chunks(CHUNK) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            out.extend(model.embed(lease.stream(), &refs)?);
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(out)
    }
}

/// The texts of a JSON Lines or plain-text input, in order. A bad line stops the read with an
/// error naming it, or with `skip_invalid` is reported on stderr and counted.
fn read_lines(
    input: impl BufRead,
    name: &Path,
    format: Format,
    skip_invalid: bool,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let (mut texts, mut skipped) = (Vec::new(), 0usize);
    for item in Texts::new(input, format) {
        match item {
            Ok(text) => texts.push(text.text),
            Err(e) if skip_invalid && !matches!(e, TextError::Io { .. }) => {
                eprintln!("skipped {}: {e}", name.display());
                skipped += 1;
            }
            Err(e) => return Err(format!("{}: {e}", name.display()).into()),
        }
    }
    if skipped > 0 {
        eprintln!("skipped {skipped} invalid line(s) of {}", name.display());
    }
    Ok(texts)
}

/// The texts `args` name, in input order.
fn read_input(args: &EmbedArgs) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let format = match args.format_in {
        InputFormat::Json => {
            if args.field.is_some() || args.skip_invalid {
                return Err("--field and --skip-invalid go with --format-in jsonl or text".into());
            }
            return Ok(read_texts(args.input.as_deref())?);
        }
        InputFormat::Jsonl => Format::JsonLines { field: args.field.clone() },
        InputFormat::Text if args.field.is_some() => {
            return Err("--field goes with --format-in jsonl".into());
        }
        InputFormat::Text => Format::Text,
    };
    match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            read_lines(std::io::BufReader::new(file), path, format, args.skip_invalid)
        }
        None => {
            read_lines(std::io::stdin().lock(), Path::new("<stdin>"), format, args.skip_invalid)
        }
    }
}

/// `path` created (truncated) for buffered writing, or an error naming it.
fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, String> {
    let file =
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(std::io::BufWriter::new(file))
}

/// Write `embeddings` (of `dim` values each) as `args` say.
fn write_output(
    args: &EmbedArgs,
    embeddings: &[Vec<f32>],
    dim: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    if args.format == OutputFormat::Npy {
        let Some(path) = &args.output else {
            return Err("--format npy writes a file: give it with --output FILE".into());
        };
        let mut npy = NpyWriter::new(create(path)?, dim, args.npy_dtype)?;
        for row in embeddings {
            npy.write_row(row)?;
        }
        npy.finish()?;
        return Ok(());
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    match args.format {
        OutputFormat::Jsonl => {
            for row in embeddings {
                serde_json::to_writer(&mut out, row)?;
                writeln!(out)?;
            }
        }
        _ => {
            serde_json::to_writer(&mut out, &embeddings)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Run `streampool embed`.
pub fn run(args: &EmbedArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.format != OutputFormat::Npy && args.npy_dtype != NpyDtype::F32 {
        return Err("--npy-dtype goes with --format npy".into());
    }
    let texts = read_input(args)?;
    let files = match &args.model {
        Some(dir) => loading::locate_model(dir)?,
        None => crate::fetch::fetch(None, false)?,
    };
    let dim = loading::ModelConfig::load(&files)?.bert.hidden_size;
    let embeddings = if texts.is_empty() {
        Vec::new()
    } else {
        with_device(args.device, PoolConfig::default(), Embed { files: &files, texts: &texts })?
    };
    write_output(args, &embeddings, dim)
}
