//! PyTorch's `linear` layer (optionally followed by GELU), split into blocks that run on the
//! calling thread plus rayon helpers, each block getting its bias and activation right after its
//! GEMM, while the block is still in cache.
//!
//! Many rows (a batch): blocks of [`ROW_BLOCK`] rows, contiguous in the output. Few rows (one
//! text): the output features are split into column blocks so that both cores work, each
//! reading only its share of the weights.

use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::activation::bias_act;
use super::error::{check_len, mul, KernelError};
use super::matmul::{row_major_mut, Parallelism};
use super::parallel::{run, workers};

/// Rows per block when splitting by rows: a `[256, 1536]` FFN block (1.5 MiB) stays in L2 for
/// the GELU pass, and the GEMM is as fast per FLOP as on the whole matrix.
const ROW_BLOCK: usize = 256;

/// Column blocks are multiples of this (one AVX-512 register of f32).
const COL_ALIGN: usize = 16;

/// PyTorch's `F.linear`: `out[rows, out_features] = x[rows, in_features] * w^T + bias`, with `w`
/// in PyTorch layout `[out_features, in_features]` (read transposed in place, no copy).
///
/// ```
/// use streampool_cpu::kernels::{linear, Parallelism};
/// let x = [1.0, 2.0]; // one row
/// let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // [3, 2]
/// let mut out = [0.0; 3];
/// linear(&x, &w, Some(&[0.5, 0.5, 0.5]), 1, 2, 3, &mut out, Parallelism::Sequential).unwrap();
/// assert_eq!(out, [1.5, 2.5, 3.5]);
/// ```
#[allow(clippy::too_many_arguments)] // BLAS-like: every extent is explicit, nothing inferred
pub fn linear(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    in_features: usize,
    out_features: usize,
    out: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    linear_act(x, w, bias, false, [rows, in_features, out_features], out, par)
}

/// [`linear`] then exact (erf) GELU: `out = gelu(x * w^T + bias)`, BERT's intermediate layer.
#[allow(clippy::too_many_arguments)] // as `linear`
pub fn linear_gelu(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    in_features: usize,
    out_features: usize,
    out: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    linear_act(x, w, bias, true, [rows, in_features, out_features], out, par)
}

fn linear_act(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    gelu: bool,
    [rows, inf, outf]: [usize; 3],
    out: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    check_len("linear x", x.len(), mul(rows, inf)?)?;
    check_len("linear w", w.len(), mul(outf, inf)?)?;
    check_len("linear out", out.len(), mul(rows, outf)?)?;
    if let Some(b) = bias {
        check_len("linear bias", b.len(), outf)?;
    }
    if rows == 0 || outf == 0 {
        return Ok(());
    }
    // `w^T` as a `[in, out]` view; a column block of it is a row block of `w`.
    let wt = MatRef::from_row_major_slice(w, outf, inf).transpose();
    let par = par.for_gemm(rows, outf, inf);
    if rows >= 2 * ROW_BLOCK || par.threads() == 1 {
        let blocks = rows.div_ceil(ROW_BLOCK);
        let items = out.chunks_mut(ROW_BLOCK * outf).zip(x.chunks(ROW_BLOCK * inf));
        run(vec![(); workers(par, blocks)], items, |_, (o, xb)| {
            let r = o.len() / outf;
            let a = MatRef::from_row_major_slice(xb, r, inf);
            gemm(row_major_mut(o, r, outf, outf), a, wt);
            bias_act(o, bias, gelu);
        });
        return Ok(());
    }
    let n = workers(par, outf.div_ceil(COL_ALIGN));
    let width = outf.div_ceil(2 * n).next_multiple_of(COL_ALIGN);
    let a = MatRef::from_row_major_slice(x, rows, inf);
    let mut blocks = Vec::with_capacity(outf.div_ceil(width));
    let mut rest = row_major_mut(out, rows, outf, outf);
    let mut j0 = 0;
    while rest.ncols() > 0 {
        let take = width.min(rest.ncols());
        let (block, tail) = rest.split_at_col_mut(take);
        let cols = block.ncols();
        blocks.push((j0, block));
        (rest, j0) = (tail, j0 + cols);
    }
    run(vec![(); n], blocks.into_iter(), |_, (j0, mut c)| {
        let cols = c.ncols();
        gemm(c.as_mut(), a, wt.subcols(j0, cols));
        let b = bias.map(|b| &b[j0..j0 + cols]);
        for row in c.row_iter_mut() {
            if let Some(row) = row.try_as_row_major_mut() {
                bias_act(row.as_slice_mut(), b, gelu);
            }
        }
    });
    Ok(())
}

/// `c = a * b` on the calling thread.
fn gemm(c: MatMut<'_, f32>, a: MatRef<'_, f32>, b: MatRef<'_, f32>) {
    faer_matmul(c, Accum::Replace, a, b, 1.0, Par::Seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    fn gelu64(x: f64) -> f64 {
        let (t, z) = (1.0 / (1.0 + 0.5 * (x / 2f64.sqrt()).abs()), (x / 2f64.sqrt()).abs());
        // Numerical Recipes' erfc (relative error < 1.2e-7), enough for a 1e-5 test.
        let erfc = t
            * (-z * z - 1.26551223
                + t * (1.00002368
                    + t * (0.37409196
                        + t * (0.09678418
                            + t * (-0.18628806
                                + t * (0.27886807
                                    + t * (-1.13520398
                                        + t * (1.48851587
                                            + t * (-0.82215223 + t * 0.17087277)))))))))
                .exp();
        let erf = if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 };
        0.5 * x * (1.0 + erf)
    }

    #[test]
    fn matches_reference_in_every_split() {
        // 13 rows: column blocks; 600 rows: row blocks (with a partial last block).
        for (rows, inf, outf) in [(13, 37, 19), (13, 40, 100), (600, 24, 35)] {
            let x = data(rows * inf, 7);
            let w = data(outf * inf, 8);
            let bias = data(outf, 9);
            let mut want = vec![0.0f64; rows * outf];
            for r in 0..rows {
                for o in 0..outf {
                    let s: f64 =
                        (0..inf).map(|i| x[r * inf + i] as f64 * w[o * inf + i] as f64).sum();
                    want[r * outf + o] = s + bias[o] as f64;
                }
            }
            for par in [Parallelism::Sequential, Parallelism::Threads(2), Parallelism::Threads(3)] {
                let d = [rows, inf, outf];
                let mut out = vec![f32::NAN; rows * outf];
                linear_act(&x, &w, Some(&bias), false, d, &mut out, par).unwrap();
                for (g, w) in out.iter().zip(&want) {
                    assert!((*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{par:?}");
                }
                linear_act(&x, &w, Some(&bias), true, d, &mut out, par).unwrap();
                for (g, w) in out.iter().zip(&want) {
                    let w = gelu64(*w);
                    assert!((*g as f64 - w).abs() <= 2e-5 * (1.0 + w.abs()), "{par:?}: {g} {w}");
                }
                linear_act(&x, &w, None, false, d, &mut out, par).unwrap();
                for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                    let w = w - bias[i % outf] as f64;
                    assert!((*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{par:?}");
                }
            }
        }
    }
}
