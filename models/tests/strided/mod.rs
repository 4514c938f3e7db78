//! Strided views of one shared tensor and their host gather, shared by the CPU and GPU
//! `contiguous()` stress tests.
#![allow(dead_code)] // each test binary uses a different subset

use streampool_core::{Backend, Device, Stream};
use streampool_tensor::{Ops, Tensor};

/// Shape of the shared tensor the views are taken of.
pub const SHAPE: [usize; 3] = [6, 10, 14];

/// Host gather of a layout over `data`, row-major (the ops conformance suite's reference).
pub use streampool_tensor::conformance::reference::gather;

/// Transposes, permutes, narrows (one empty) of a `SHAPE` tensor, no copies.
pub fn views<B: Backend>(t: &Tensor<B>) -> Vec<Tensor<B>> {
    vec![
        t.transpose(0, 2).unwrap(),
        t.permute(&[1, 2, 0]).unwrap(),
        t.narrow(1, 3, 5).unwrap(),
        t.narrow(2, 1, 9).unwrap().transpose(0, 1).unwrap(),
        t.reshape(&[60, 14]).unwrap().transpose(0, 1).unwrap().narrow(0, 2, 7).unwrap(),
        t.narrow(0, 5, 1).unwrap().permute(&[2, 0, 1]).unwrap(),
        t.narrow(1, 0, 0).unwrap().transpose(1, 2).unwrap(),
    ]
}

/// `threads` threads, each on its own leased stream, `rounds` times calling `contiguous()` on a
/// view of one shared f32 tensor and one shared u32 tensor: every dense copy (and `to_host` of
/// the view itself) equals the host gather, and `check(dense, view)` holds for each f32 copy.
/// At the end the shared f32 source is unchanged (it was only read).
pub fn stress_contiguous<B: Ops>(
    device: &Device<B>,
    threads: usize,
    rounds: usize,
    check: impl Fn(&Tensor<B>, &Tensor<B>) + Sync,
) {
    let n: usize = SHAPE.iter().product();
    let floats: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
    let words: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
    let (f, u) = {
        let lease = device.acquire().unwrap();
        let f = Tensor::from_host(device, lease.stream(), &floats, &SHAPE).unwrap();
        let u = Tensor::from_host_u32(device, lease.stream(), &words, &SHAPE).unwrap();
        lease.stream().synchronize().unwrap();
        (f, u)
    };
    let (fv, uv) = (views(&f), views(&u));
    std::thread::scope(|s| {
        for t in 0..threads {
            let (fv, uv, floats, words, check) = (&fv, &uv, &floats, &words, &check);
            s.spawn(move || {
                let lease = device.acquire().unwrap();
                let stream = lease.stream();
                for round in 0..rounds {
                    let k = (t + round) % fv.len();
                    let dense = fv[k].contiguous(stream).unwrap();
                    assert!(dense.is_contiguous());
                    check(&dense, &fv[k]);
                    let want = gather(floats, fv[k].layout());
                    assert_eq!(dense.to_host(stream).unwrap(), want, "thread {t} f32 view {k}");
                    assert_eq!(fv[k].to_host(stream).unwrap(), want, "thread {t} to_host view {k}");
                    let du = uv[k].contiguous(stream).unwrap();
                    let want = gather(words, uv[k].layout());
                    assert_eq!(du.to_host_u32(stream).unwrap(), want, "thread {t} u32 view {k}");
                }
            });
        }
    });
    let lease = device.acquire().unwrap();
    assert_eq!(f.to_host(lease.stream()).unwrap(), floats, "the shared source was only read");
}
