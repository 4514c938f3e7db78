//! Microbenchmarks of the fused attention and layer-norm kernels (MiniLM shapes), timed with
//! CUDA events; `bench/torch_ops.py` times the same ops in PyTorch. Needs a GPU; prints results.
#![cfg(feature = "cuda")]

mod common;

use common::*;
use streampool_core::{Backend, Event, Stream, Timing};
use streampool_cuda::ops::{self, Elem, Slice};
use streampool_cuda::CudaStream;

fn time_us(
    backend: &streampool_cuda::CudaBackend,
    s: &CudaStream,
    iters: u32,
    mut f: impl FnMut(),
) -> f64 {
    for _ in 0..10 {
        f();
    }
    let (start, end) =
        (backend.new_event(Timing::Enabled).unwrap(), backend.new_event(Timing::Enabled).unwrap());
    s.record(&start).unwrap();
    for _ in 0..iters {
        f();
    }
    s.record(&end).unwrap();
    end.synchronize().unwrap();
    end.elapsed_since(&start).unwrap().as_secs_f64() * 1e6 / f64::from(iters)
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bench_attention_and_layer_norm() {
    let backend = open();
    let s = backend.new_stream(0).unwrap();
    for &(batch, seq) in &[(1usize, 128usize), (8, 128), (32, 128)] {
        let (heads, d) = (12, 32);
        let hid = heads * d;
        let n = batch * seq * hid;
        for elem in [Elem::F32, Elem::F16] {
            let up = if elem == Elem::F32 { upload } else { upload_f16 };
            let (q, k, v) = (up(&s, &rand(n, 1)), up(&s, &rand(n, 2)), up(&s, &rand(n, 3)));
            let mask = upload(&s, &vec![1.0; batch * seq]);
            let out = s.alloc(n * elem.size()).unwrap();
            let dims = ops::AttentionDims { batch, seq, heads, head_dim: d };
            let us = time_us(&backend, &s, 200, || {
                ops::attention(
                    &s,
                    (&q).into(),
                    (&k).into(),
                    (&v).into(),
                    Some((&mask).into()),
                    (&out).into(),
                    dims,
                    ops::AttentionLayout::dense(hid),
                    None,
                    elem,
                )
                .unwrap()
            });
            println!(
                "BENCH attention {elem:?} batch={batch} seq={seq} heads={heads} d={d}: {us:.2} us"
            );
        }
        let rows = batch * seq;
        let (x, r, bias, g, b) = (
            upload(&s, &rand(rows * hid, 4)),
            upload(&s, &rand(rows * hid, 5)),
            upload(&s, &rand(hid, 6)),
            upload(&s, &rand(hid, 7)),
            upload(&s, &rand(hid, 8)),
        );
        let out = s.alloc(rows * hid * 4).unwrap();
        let us = time_us(&backend, &s, 200, || {
            let norm = ops::LayerNormArgs { gamma: (&g).into(), beta: (&b).into(), eps: 1e-12 };
            ops::add_layer_norm(
                &s,
                (&x).into(),
                Some((&r).into()),
                Some((&bias).into()),
                norm,
                rows,
                hid,
                Slice::new(&out, 0),
                Elem::F32,
            )
            .unwrap()
        });
        println!("BENCH add_layer_norm F32 rows={rows} dim={hid}: {us:.2} us");
    }
}
