//! `streampool embed`: a JSON array of strings in (file or stdin), a JSON array of embeddings
//! out (stdout), in input order.

use std::io::Write;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use streampool_core::{Device, PoolConfig};
use streampool_models::loading::{self, ModelFiles};
use streampool_models::MiniLm;
use streampool_tensor::Ops;

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

/// Run `streampool embed`.
pub fn run(args: &EmbedArgs) -> Result<(), Box<dyn std::error::Error>> {
    let texts = read_texts(args.input.as_deref())?;
    let files = match &args.model {
        Some(dir) => loading::locate_model(dir)?,
        None => crate::fetch::fetch(None, false)?,
    };
    let embeddings = if texts.is_empty() {
        Vec::new()
    } else {
        with_device(args.device, PoolConfig::default(), Embed { files: &files, texts: &texts })?
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &embeddings)?;
    writeln!(stdout)?;
    Ok(())
}
