//! One MiniLM shared by 16 threads at once, each on its own stream: results equal sequential
//! runs, the weights exist once (same buffers, RSS grows far less than a copy per thread).
//! Alone in its binary so that no other test disturbs the RSS measurement.

mod common;

use common::{device, max_abs_diff, model, texts};
use streampool_cpu::CpuBuffer;

const THREADS: usize = 16;

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    let kb: usize = line.split_whitespace().nth(1).expect("value").parse().expect("number");
    kb * 1024
}

/// Thread `t` embeds 3 texts, a different selection per thread.
fn texts_of(t: usize) -> Vec<&'static str> {
    let all = texts();
    (0..3).map(|j| all[(t * 7 + j * 11) % all.len()]).collect()
}

#[test]
fn sixteen_threads_share_one_model() {
    let Some(model) = model() else { return };
    let params: Vec<CpuBuffer> = model.parameters().iter().map(|t| t.buffer().clone()).collect();
    let weight_bytes = model.parameter_bytes();
    assert!(weight_bytes > 80_000_000, "MiniLM has ~90 MB of f32 weights, got {weight_bytes}");

    let sequential: Vec<Vec<Vec<f32>>> = {
        let lease = device().acquire().unwrap();
        (0..THREADS).map(|t| model.embed(lease.stream(), &texts_of(t)).unwrap()).collect()
    };

    let before = rss_bytes();
    let results: Vec<(usize, Vec<Vec<f32>>, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let params = &params;
                s.spawn(move || {
                    let lease = device().acquire().unwrap();
                    let got = model.embed(lease.stream(), &texts_of(t)).unwrap();
                    let got2 = model.embed(lease.stream(), &texts_of(t)).unwrap();
                    assert_eq!(got, got2, "thread {t}: repeated call differs");
                    let shared =
                        model.parameters().iter().zip(params).all(|(p, q)| p.buffer().same_as(q));
                    (t, got, shared)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let growth = rss_bytes().saturating_sub(before);
    eprintln!(
        "RSS growth with {THREADS} threads: {} MB (weights {} MB)",
        growth >> 20,
        weight_bytes >> 20
    );

    for (t, got, shared) in results {
        assert!(shared, "thread {t} saw other weight buffers");
        for (g, want) in got.iter().zip(&sequential[t]) {
            let diff = max_abs_diff(g, want);
            assert!(diff <= 1e-6, "thread {t}: differs from the sequential run by {diff}");
        }
    }
    assert!(
        growth < 2 * weight_bytes,
        "RSS grew by {growth} bytes with {THREADS} threads; weights are {weight_bytes} bytes"
    );
}
