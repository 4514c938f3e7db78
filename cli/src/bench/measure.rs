//! Timing many threads that each run requests (on their own stream, or through an engine):
//! warm-up, then a fixed duration, per-request latencies kept per thread (no shared state while
//! timing).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use streampool_core::{Backend, Device, Lease};

/// One request-running worker, owned by one thread.
pub trait Worker<B: Backend> {
    /// Run one request on `stream` and wait for its result; return how many items (texts,
    /// sequences) it processed.
    fn request(&mut self, stream: &B::Stream) -> Result<usize, String>;
}

/// What one point of the sweep measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Threads issuing requests.
    pub threads: usize,
    /// Requests completed while timing.
    pub requests: usize,
    /// Items (texts) completed while timing.
    pub items: usize,
    /// Timed duration in seconds.
    pub seconds: f64,
    /// Items per second.
    pub items_per_s: f64,
    /// Median request latency, ms.
    pub p50_ms: f64,
    /// 99th percentile request latency, ms.
    pub p99_ms: f64,
    /// Device memory in use on the devices after the point, MiB (backends that report it).
    pub device_mib: Option<f64>,
    /// Of that, the streams' caching pools (blocks in use + cached), MiB.
    pub pool_mib: Option<f64>,
}

/// Run `threads` workers, each on its own leased stream, for `warmup` then `duration`: thread
/// `t` on device `t % devices.len()`.
pub fn run_threads<B: Backend, W: Worker<B>>(
    devices: &[Device<B>],
    threads: usize,
    warmup: Duration,
    duration: Duration,
    make_worker: impl Fn(usize) -> Result<W, String> + Sync,
) -> Result<Sample, String> {
    let setup = |t: usize| {
        let lease = devices[t % devices.len()].acquire().map_err(|e| e.to_string())?;
        Ok((lease, make_worker(t)?))
    };
    let request = |(lease, worker): &mut (Lease<B>, W)| worker.request(lease.stream());
    run_callers(devices, threads, warmup, duration, setup, request)
}

/// Run `threads` threads for `warmup` then `duration`: thread `t` makes its state with
/// `setup(t)`, then repeats `request` (which returns the items it processed), keeping its own
/// latencies. Every device is synchronised and their memory read (summed) at the end.
pub fn run_callers<B: Backend, S>(
    devices: &[Device<B>],
    threads: usize,
    warmup: Duration,
    duration: Duration,
    setup: impl Fn(usize) -> Result<S, String> + Sync,
    request: impl Fn(&mut S) -> Result<usize, String> + Sync,
) -> Result<Sample, String> {
    let barrier = Barrier::new(threads);
    let results: Vec<Result<(Vec<f64>, usize), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, setup, request) = (&barrier, &setup, &request);
                s.spawn(move || -> Result<(Vec<f64>, usize), String> {
                    // Every thread reaches the barrier, also after a failure, so none hangs.
                    let mut ready = setup(t);
                    let warm_until = Instant::now() + warmup;
                    if let Ok(state) = &mut ready {
                        while Instant::now() < warm_until {
                            if let Err(e) = request(state) {
                                ready = Err(e);
                                break;
                            }
                        }
                    }
                    barrier.wait();
                    let mut state = ready?;
                    let stop = Instant::now() + duration;
                    let mut latencies = Vec::with_capacity(4096);
                    let mut items = 0;
                    loop {
                        let start = Instant::now();
                        if start >= stop {
                            break;
                        }
                        items += request(&mut state)?;
                        latencies.push(start.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok((latencies, items))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a bench thread panicked".into())))
            .collect()
    });
    let mut latencies = Vec::new();
    let mut items = 0;
    for r in results {
        let (l, n) = r?;
        latencies.extend(l);
        items += n;
    }
    for device in devices {
        device.synchronize().map_err(|e| format!("{}: {e}", device.label()))?;
    }
    latencies.sort_by(f64::total_cmp);
    let seconds = duration.as_secs_f64();
    let memory = devices.iter().map(|d| d.backend().memory()).try_fold(
        streampool_core::MemoryUsage::default(),
        |sum, m| {
            m.map(|m| streampool_core::MemoryUsage {
                device_used: sum.device_used + m.device_used,
                pool_in_use: sum.pool_in_use + m.pool_in_use,
                pool_peak: sum.pool_peak.max(m.pool_peak),
                pool_cached: sum.pool_cached + m.pool_cached,
            })
        },
    );
    let mib = |bytes: usize| bytes as f64 / (1 << 20) as f64;
    Ok(Sample {
        threads,
        requests: latencies.len(),
        items,
        seconds,
        items_per_s: items as f64 / seconds,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        device_mib: memory.map(|m| mib(m.device_used)),
        pool_mib: memory.map(|m| mib(m.pool_in_use + m.pool_cached)),
    })
}

/// The `q` quantile of sorted values (nearest rank); 0 when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
