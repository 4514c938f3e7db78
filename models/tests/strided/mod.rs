//! Strided views of one shared tensor and their host gather, shared by the CPU and GPU
//! `contiguous()` stress tests.
#![allow(dead_code)] // each test binary uses a different subset

use streampool_core::Backend;
use streampool_tensor::{Layout, Tensor};

/// Shape of the shared tensor the views are taken of.
pub const SHAPE: [usize; 3] = [6, 10, 14];

/// Host gather of `layout` over `data`, row-major.
pub fn gather<T: Copy>(data: &[T], layout: &Layout) -> Vec<T> {
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
