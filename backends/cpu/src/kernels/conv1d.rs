//! 1-D convolution with PyTorch `nn.Conv1d` semantics (stride, zero padding, dilation, groups),
//! by im2col and one GEMM per (batch, group).

use streampool_core::{Conv1dParams, Conv1dShape};

use super::error::{check_len, prod, KernelError};
use super::matmul::{matmul, GemmDims, MatLayout, MatView, MatViewMut, Parallelism};

/// `Lout` of `shape` under `params` (the one definition, in the core), as a kernel error.
fn out_len(shape: &Conv1dShape, params: &Conv1dParams) -> Result<usize, KernelError> {
    shape.out_len(params).map_err(|e| KernelError::Shape(format!("conv1d: {e}")))
}

/// `out[B, Cout, Lout] = conv1d(input[B, Cin, L], weight[Cout, Cin/groups, K]) + bias[Cout]`.
#[allow(clippy::too_many_arguments)] // nn.Conv1d's operands plus its hyper-parameters
pub fn conv1d(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    shape: Conv1dShape,
    params: Conv1dParams,
    par: Parallelism,
) -> Result<(), KernelError> {
    let Conv1dShape { batch, in_channels, length, out_channels, kernel } = shape;
    let lout = out_len(&shape, &params)?;
    let g = params.groups;
    let (cin_g, cout_g) = (in_channels / g, out_channels / g);
    check_len("conv1d input", input.len(), prod(&[batch, in_channels, length])?)?;
    check_len("conv1d weight", weight.len(), prod(&[out_channels, cin_g, kernel])?)?;
    check_len("conv1d out", out.len(), prod(&[batch, out_channels, lout])?)?;
    if let Some(b) = bias {
        check_len("conv1d bias", b.len(), out_channels)?;
    }
    if out.is_empty() {
        return Ok(());
    }
    let beta = match bias {
        Some(b) => {
            for (row, &bv) in out.chunks_exact_mut(lout).zip(b.iter().cycle()) {
                row.fill(bv);
            }
            1.0
        }
        None => 0.0,
    };
    let direct = kernel == 1 && params.stride == 1 && params.padding == 0;
    let rows = cin_g * kernel;
    let mut col = if direct { Vec::new() } else { vec![0.0f32; rows * lout] };
    for b in 0..batch {
        for gi in 0..g {
            let x = &input[(b * in_channels + gi * cin_g) * length..][..cin_g * length];
            let cols: &[f32] = if direct {
                x
            } else {
                im2col(x, cin_g, length, kernel, lout, &params, &mut col);
                &col
            };
            let w = &weight[gi * cout_g * rows..][..cout_g * rows];
            let o = &mut out[(b * out_channels + gi * cout_g) * lout..][..cout_g * lout];
            matmul(
                GemmDims { batch: 1, m: cout_g, n: lout, k: rows },
                1.0,
                MatView { data: w, layout: MatLayout::row_major(cout_g, rows) },
                MatView { data: cols, layout: MatLayout::row_major(rows, lout) },
                beta,
                MatViewMut { data: o, layout: MatLayout::row_major(cout_g, lout) },
                par,
            )?;
        }
    }
    Ok(())
}

/// `col[c*K + t, j] = x[c, j*s + t*d - p]` (0 outside the input).
fn im2col(
    x: &[f32],
    cin: usize,
    len: usize,
    k: usize,
    lout: usize,
    p: &Conv1dParams,
    col: &mut [f32],
) {
    for c in 0..cin {
        let xc = &x[c * len..][..len];
        for t in 0..k {
            let row = &mut col[(c * k + t) * lout..][..lout];
            for (j, v) in row.iter_mut().enumerate() {
                let pos = (j * p.stride + t * p.dilation).wrapping_sub(p.padding);
                *v = if pos < len { xc[pos] } else { 0.0 };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], bias: &[f32], s: Conv1dShape, p: Conv1dParams) -> Vec<f64> {
        let lout = s.out_len(&p).unwrap();
        let (cin_g, cout_g) = (s.in_channels / p.groups, s.out_channels / p.groups);
        let mut out = Vec::new();
        for b in 0..s.batch {
            for o in 0..s.out_channels {
                let g = o / cout_g;
                for j in 0..lout {
                    let mut acc = bias[o] as f64;
                    for c in 0..cin_g {
                        for t in 0..s.kernel {
                            let pos = (j * p.stride + t * p.dilation) as isize - p.padding as isize;
                            if pos >= 0 && (pos as usize) < s.length {
                                let xv = x
                                    [(b * s.in_channels + g * cin_g + c) * s.length + pos as usize];
                                acc += xv as f64 * w[(o * cin_g + c) * s.kernel + t] as f64;
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
        out
    }

    #[test]
    fn matches_reference() {
        let cases = [
            (
                Conv1dShape { batch: 2, in_channels: 4, length: 11, out_channels: 6, kernel: 3 },
                Conv1dParams { stride: 2, padding: 2, dilation: 2, groups: 2 },
            ),
            (
                Conv1dShape { batch: 1, in_channels: 3, length: 7, out_channels: 5, kernel: 1 },
                Conv1dParams::default(),
            ),
            (
                Conv1dShape { batch: 2, in_channels: 3, length: 9, out_channels: 4, kernel: 3 },
                Conv1dParams { padding: 1, ..Conv1dParams::default() },
            ),
        ];
        for (s, p) in cases {
            let cin_g = s.in_channels / p.groups;
            let x: Vec<f32> =
                (0..s.batch * s.in_channels * s.length).map(|i| (i as f32 * 0.3).sin()).collect();
            let w: Vec<f32> =
                (0..s.out_channels * cin_g * s.kernel).map(|i| (i as f32 * 0.7).cos()).collect();
            let bias: Vec<f32> = (0..s.out_channels).map(|i| i as f32 * 0.1).collect();
            let want = reference(&x, &w, &bias, s, p);
            let mut out = vec![f32::NAN; want.len()];
            conv1d(&x, &w, Some(&bias), &mut out, s, p, Parallelism::Sequential).unwrap();
            for (g, w) in out.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()), "{s:?} {p:?}: {g} vs {w}");
            }
        }
        let s = Conv1dShape { batch: 1, in_channels: 3, length: 2, out_channels: 2, kernel: 3 };
        assert!(conv1d(
            &[0.0; 6],
            &[0.0; 18],
            None,
            &mut [],
            s,
            Conv1dParams::default(),
            Parallelism::Sequential
        )
        .is_err());
        let p = Conv1dParams { groups: 2, ..Conv1dParams::default() };
        assert!(matches!(out_len(&s, &p), Err(KernelError::Shape(_))));
    }
}
