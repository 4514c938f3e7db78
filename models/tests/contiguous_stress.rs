//! 64 threads at once calling `contiguous()` on strided views (transposes, permutes, narrows)
//! of shared tensors, each on its own stream; every result checked against a host gather.

mod common;
mod strided;

use common::device;
use streampool_tensor::Tensor;
use strided::{gather, views, SHAPE};

const THREADS: usize = 64;
#[test]
fn sixty_four_threads_gather_strided_views() {
    let n: usize = SHAPE.iter().product();
    let floats: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
    let words: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
    let (f, u) = {
        let lease = device().acquire().unwrap();
        let f = Tensor::from_host(device(), lease.stream(), &floats, &SHAPE).unwrap();
        let u = Tensor::from_host_u32(device(), lease.stream(), &words, &SHAPE).unwrap();
        streampool_core::Stream::synchronize(lease.stream()).unwrap();
        (f, u)
    };
    let (fv, uv) = (views(&f), views(&u));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (fv, uv, floats, words) = (&fv, &uv, &floats, &words);
            s.spawn(move || {
                let lease = device().acquire().unwrap();
                let stream = lease.stream();
                for round in 0..10 {
                    let k = (t + round) % fv.len();
                    let dense = fv[k].contiguous(stream).unwrap();
                    assert!(dense.is_contiguous());
                    assert_eq!(dense.shape(), fv[k].shape());
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
    // The shared sources were only read.
    let lease = device().acquire().unwrap();
    assert_eq!(f.to_host(lease.stream()).unwrap(), floats);
}
