//! Splitting one kernel call over threads: the calling thread (a stream's worker) works too, and up
//! to `threads - 1` helpers join it from [`pool`], a rayon pool of one thread fewer than the cores
//! (the caller is the missing one: rayon's global pool of one thread per core, plus the caller,
//! oversubscribes the cores and makes run times bimodal); work items are handed out one at a
//! time, so a thread that the OS preempts (other streams, other processes) simply takes fewer.
//!
//! Waking a sleeping pool thread can take as long as a whole 128-row GEMM (figures:
//! docs/performance.md, "CPU kernels"), so a helper that finishes lingers for up to [`LINGER`]
//! on its core, yielding, until the next parallel call begins ([`GENERATION`] moves):
//! back-to-back ops of a stream then find it awake.
//!
//! Several streams share the cores: each parallel call counts itself in [`ACTIVE`], and a call
//! that finds others running asks for fewer helpers (none once the cores are spoken for), so
//! concurrent streams do not oversubscribe the machine with nested fork/join.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::matmul::Parallelism;

/// Kernel calls currently inside [`run`] with more than one worker. Only a scheduling hint:
/// `Relaxed` is enough, a stale value costs at most one helper too many or too few.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Parallel calls started so far; a lingering helper returns to the pool when it moves.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// A helper is lingering (at most one at a time).
static LINGERING: AtomicBool = AtomicBool::new(false);

/// How long a helper stays awake after its work, waiting for the next parallel call.
const LINGER: Duration = Duration::from_micros(1000);

/// The helpers' pool: one thread fewer than the cores (at least one); `None` if it cannot be
/// built, and then every call runs on its caller alone.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores.saturating_sub(1).max(1))
            .thread_name(|i| format!("streampool-kernel-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// How many workers (the caller included) a call with `items` independent items should use.
pub(crate) fn workers(par: Parallelism, items: usize) -> usize {
    let others = ACTIVE.load(Ordering::Relaxed);
    par.threads().saturating_sub(others).clamp(1, items.max(1))
}

/// Runs `work(state, item)` for every item, on `states.len()` workers (the calling thread and
/// `states.len() - 1` rayon helpers), each worker owning one state (e.g. its scratch buffer).
pub(crate) fn run<T, S, I>(mut states: Vec<S>, items: I, work: impl Fn(&mut S, T) + Sync)
where
    T: Send,
    S: Send,
    I: Iterator<Item = T> + Send,
{
    let pool = match pool() {
        Some(pool) if states.len() > 1 => pool,
        _ => {
            if let Some(state) = states.first_mut() {
                items.for_each(|item| work(state, item));
            }
            return;
        }
    };
    let helpers = states.len() - 1;
    let items = Mutex::new(items);
    let states = Mutex::new(states);
    let worker = || {
        let Some(mut state) = states.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
            return;
        };
        loop {
            let next = items.lock().unwrap_or_else(|p| p.into_inner()).next();
            match next {
                Some(item) => work(&mut state, item),
                None => break,
            }
        }
    };
    GENERATION.fetch_add(1, Ordering::Relaxed);
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let _active = Decrement;
    pool.in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| {
                worker();
                linger(pool);
            });
        }
        worker();
    });
}

/// Queues, on this pool thread, a job that keeps it awake until the next parallel call starts
/// or [`LINGER`] has passed. It yields while it waits, so runnable threads still get the core.
fn linger(pool: &'static rayon::ThreadPool) {
    if LINGERING.swap(true, Ordering::Relaxed) {
        return;
    }
    let generation = GENERATION.load(Ordering::Relaxed);
    pool.spawn(move || {
        let start = Instant::now();
        while GENERATION.load(Ordering::Relaxed) == generation && start.elapsed() < LINGER {
            std::thread::yield_now();
        }
        LINGERING.store(false, Ordering::Relaxed);
    });
}

/// Leaves [`ACTIVE`] even when a work item panics.
struct Decrement;

impl Drop for Decrement {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_with_one_state_per_worker() {
        for threads in [1, 2, 4] {
            let mut out = [0u32; 37];
            let n = workers(Parallelism::Threads(threads), out.len());
            assert!(n >= 1 && n <= threads);
            let states: Vec<usize> = (0..n).collect();
            let seen = Mutex::new(Vec::new());
            run(states, out.chunks_mut(5).enumerate(), |s, (i, c)| {
                c.iter_mut().for_each(|v| *v += 1 + i as u32);
                seen.lock().unwrap().push(*s);
            });
            for (j, v) in out.iter().enumerate() {
                assert_eq!(*v, 1 + (j / 5) as u32);
            }
            assert_eq!(seen.into_inner().unwrap().len(), 8);
        }
    }
}
