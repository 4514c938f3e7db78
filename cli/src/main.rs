//! `streampool`: the command line of the streampool runtime.
#![forbid(unsafe_code)]

mod demo;
mod device;

use clap::{Parser, Subcommand};

/// Parallel inference on one shared model: every thread on its own stream.
#[derive(Parser)]
#[command(name = "streampool", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a concurrent workload: threads each lease a stream, submit work with known results,
    /// and report what each did.
    Demo(demo::DemoArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
