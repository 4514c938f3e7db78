//! `streampool demo`: threads lease streams, submit chains of work whose results are known in
//! advance, time them with events, and report what each did.

use std::time::{Duration, Instant};

use streampool_core::conformance::{expected, read_u32, steps_for};
use streampool_core::{Backend, Device, Event, PoolConfig, Stream, Timing};

use crate::device::{with_device, DeviceChoice, OnDevice};

/// Options of `streampool demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Threads, each on its own stream.
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Chains of work per thread.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Stream slots in the pool.
    #[arg(long, default_value_t = 32)]
    capacity: usize,
    /// Words (u32) per buffer.
    #[arg(long, default_value_t = 1 << 16)]
    words: usize,
    /// Device to run on: auto, cpu, cuda, cuda:1 or metal.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

struct Report {
    thread: usize,
    slot: usize,
    ops: usize,
    correct: usize,
    device_time: Duration,
}

struct Demo<'a>(&'a DemoArgs);

impl OnDevice for Demo<'_> {
    type Output = ();

    fn run<B: streampool_tensor::Ops>(
        self,
        device: Device<B>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let args = self.0;
        println!(
            "device: {}  pool: {} slots  threads: {}  iterations: {}  buffer: {} words",
            device.backend().name(),
            device.capacity(),
            args.threads,
            args.iterations,
            args.words
        );
        let start = Instant::now();
        type ThreadResult = Result<Report, Box<dyn std::error::Error + Send + Sync>>;
        let results: Vec<ThreadResult> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..args.threads)
                .map(|t| {
                    let device = &device;
                    s.spawn(move || thread_work(device, t, args))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("demo thread panicked".into())))
                .collect()
        });
        let reports = results
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e as Box<dyn std::error::Error>)?;
        device.synchronize()?;
        let wall = start.elapsed();

        println!(
            "\n{:>6} {:>5} {:>8} {:>9} {:>12}",
            "thread", "slot", "ops", "correct", "device ms"
        );
        for r in &reports {
            println!(
                "{:>6} {:>5} {:>8} {:>9} {:>12.2}",
                r.thread,
                r.slot,
                r.ops,
                format!("{}/{}", r.correct, args.iterations),
                r.device_time.as_secs_f64() * 1e3
            );
        }
        let stats = device.stats();
        let ops: usize = reports.iter().map(|r| r.ops).sum();
        let correct: usize = reports.iter().map(|r| r.correct).sum();
        println!(
            "\n{ops} ops in {:.1} ms ({:.0} ops/s); {correct}/{} chains correct",
            wall.as_secs_f64() * 1e3,
            ops as f64 / wall.as_secs_f64(),
            args.threads * args.iterations
        );
        println!(
            "pool: {} streams created, high-water {} of {}, {} acquires, {} waits",
            stats.streams_created, stats.high_water, stats.capacity, stats.acquires, stats.waits
        );
        if correct != args.threads * args.iterations {
            return Err("some chains computed a wrong result".into());
        }
        Ok(())
    }
}

/// One thread: its own stream (leased on first use, given back at exit), chains of work timed
/// between two events.
fn thread_work<B: Backend>(
    device: &Device<B>,
    thread: usize,
    args: &DemoArgs,
) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    let buf = device.alloc(args.words * 4)?;
    let (begin, end) = (device.new_event(Timing::Enabled)?, device.new_event(Timing::Enabled)?);
    let report = device.with_stream(
        |stream| -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
            let mut correct = 0;
            let mut ops = 0;
            stream.record(&begin)?;
            for i in 0..args.iterations {
                let (seed, steps) = ((thread * 1_000_000 + i) as u32, steps_for(thread, i));
                stream.fill_u32(&buf, seed)?;
                for &(m, a) in &steps {
                    stream.mul_add_u32(&buf, m, a)?;
                }
                ops += 1 + steps.len();
                let want = expected(seed, &steps);
                correct += usize::from(read_u32::<B>(stream, &buf).iter().all(|&x| x == want));
            }
            stream.record(&end)?;
            end.synchronize()?;
            Ok(Report {
                thread,
                slot: stream.slot(),
                ops,
                correct,
                device_time: end.elapsed_since(&begin)?,
            })
        },
    )??;
    Ok(report)
}

/// Run the demo.
pub fn run(args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.threads == 0 || args.words == 0 {
        return Err("--threads and --words must be at least 1".into());
    }
    with_device(args.device.clone(), PoolConfig::with_capacity(args.capacity), Demo(args))
}
