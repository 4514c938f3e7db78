//! 64 threads at once calling `contiguous()` on strided views (transposes, permutes, narrows)
//! of shared tensors, each on its own stream; every result checked against a host gather.

mod common;
mod strided;

use common::device;
use strided::stress_contiguous;

const THREADS: usize = 64;
#[test]
fn sixty_four_threads_gather_strided_views() {
    stress_contiguous(device(), THREADS, 10, |dense, view| assert_eq!(dense.shape(), view.shape()));
}
