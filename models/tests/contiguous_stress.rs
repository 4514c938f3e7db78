//! 64 threads at once calling `contiguous()` on strided views (transposes, permutes, narrows)
//! of shared tensors, each on its own stream; every result checked against a host gather.

mod common;

use common::device;
use streampool_cpu::CpuBackend;
use streampool_tensor::{Layout, Tensor};

const THREADS: usize = 64;
const SHAPE: [usize; 3] = [6, 10, 14];

/// Host gather of `layout` over `data`, row-major.
fn gather<T: Copy>(data: &[T], layout: &Layout) -> Vec<T> {
    let shape = layout.shape();
    let mut idx = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(layout.numel());
    for _ in 0..layout.numel() {
        let at =
            layout.offset() + idx.iter().zip(layout.strides()).map(|(i, s)| i * s).sum::<usize>();
        out.push(data[at]);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

fn views(t: &Tensor<CpuBackend>) -> Vec<Tensor<CpuBackend>> {
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
