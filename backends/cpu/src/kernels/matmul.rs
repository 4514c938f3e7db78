//! Strided, batched GEMM (`C = alpha * A * B + beta * C`) and the PyTorch `linear` layer, on top of
//! faer's safe matrix views.
//!
//! A transposed operand is a view with swapped strides ([`MatLayout::transposed`]), so `op(A)`
//! needs no copy as long as one of its two strides is 1 (the case for every view the tensor layer
//! makes of a contiguous buffer). Views with neither stride 1 are packed into a temporary first.

use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::error::{check_min_len, mul, KernelError};
pub use streampool_core::GemmDims;

/// How many threads a kernel may use. `Threads(n)` runs `n` tasks on rayon's global pool;
/// `Threads(0 | 1)` means [`Parallelism::Sequential`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parallelism {
    /// On the calling thread only.
    #[default]
    Sequential,
    /// Up to this many threads of rayon's global pool.
    Threads(usize),
}

impl Parallelism {
    /// Thread count (at least 1).
    pub fn threads(self) -> usize {
        match self {
            Parallelism::Sequential => 1,
            Parallelism::Threads(n) => n.max(1),
        }
    }

    /// `Sequential` for GEMMs too small to gain from a second thread (below about 8 MFLOP the
    /// fork/join costs more than it saves), `self` otherwise.
    pub fn for_gemm(self, m: usize, n: usize, k: usize) -> Parallelism {
        let flops = 2.0 * m as f64 * n as f64 * k as f64;
        if flops < 8.0e6 {
            Parallelism::Sequential
        } else {
            self
        }
    }

    fn to_faer(self) -> Par {
        match self.threads() {
            1 => Par::Seq,
            n => Par::rayon(n),
        }
    }
}

/// Where the elements of a (batch of) matrices sit in a slice: element `(b, i, j)` is at
/// `offset + b * batch_stride + i * row_stride + j * col_stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatLayout {
    /// Index of element `(0, 0, 0)`.
    pub offset: usize,
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
    /// Distance between consecutive matrices of the batch.
    pub batch_stride: usize,
}

impl MatLayout {
    /// A contiguous row-major `[batch, rows, cols]` block at offset 0.
    pub const fn row_major(rows: usize, cols: usize) -> MatLayout {
        MatLayout { offset: 0, row_stride: cols, col_stride: 1, batch_stride: rows * cols }
    }

    /// The transposed view: rows become columns (swaps the two strides).
    pub const fn transposed(self) -> MatLayout {
        MatLayout { row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// The same layout starting at `offset`.
    pub const fn with_offset(self, offset: usize) -> MatLayout {
        MatLayout { offset, ..self }
    }

    /// The same layout with another batch stride.
    pub const fn with_batch_stride(self, batch_stride: usize) -> MatLayout {
        MatLayout { batch_stride, ..self }
    }

    /// Smallest slice length holding `batch` matrices of `rows x cols` (0 when any is 0).
    fn min_len(&self, batch: usize, rows: usize, cols: usize) -> Result<usize, KernelError> {
        if batch == 0 || rows == 0 || cols == 0 {
            return Ok(0);
        }
        let last = [
            mul(batch - 1, self.batch_stride)?,
            mul(rows - 1, self.row_stride)?,
            mul(cols - 1, self.col_stride)?,
            self.offset,
        ]
        .iter()
        .try_fold(1usize, |acc, &v| acc.checked_add(v))
        .ok_or_else(|| KernelError::Shape("view extends past usize::MAX".into()))?;
        Ok(last)
    }
}

/// A read-only operand: a slice and the layout of the matrices in it.
#[derive(Clone, Copy, Debug)]
pub struct MatView<'a> {
    /// The buffer.
    pub data: &'a [f32],
    /// Where the matrices are in it.
    pub layout: MatLayout,
}

/// The output operand.
#[derive(Debug)]
pub struct MatViewMut<'a> {
    /// The buffer.
    pub data: &'a mut [f32],
    /// Where the matrices are in it; each must address distinct elements (one stride 1, the other
    /// at least the extent), and batches must not overlap.
    pub layout: MatLayout,
}

/// `C[b] = alpha * A[b] * B[b] + beta * C[b]` for every `b < dims.batch`, with `A[b]` `[m, k]`,
/// `B[b]` `[k, n]`, `C[b]` `[m, n]` read through their layouts (transpose = swapped strides).
/// `beta == 0` overwrites `C` without reading it (BLAS semantics: NaNs in `C` do not propagate).
///
/// ```
/// use streampool_cpu::kernels::{matmul, GemmDims, MatLayout, MatView, MatViewMut, Parallelism};
/// let a = [1.0, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let mut c = [0.0; 4];
/// let l = MatLayout::row_major(2, 2);
/// let dims = GemmDims { batch: 1, m: 2, n: 2, k: 2 };
/// // A * A^T
/// matmul(dims, 1.0, MatView { data: &a, layout: l }, MatView { data: &a, layout: l.transposed() },
///        0.0, MatViewMut { data: &mut c, layout: l }, Parallelism::Sequential).unwrap();
/// assert_eq!(c, [5.0, 11.0, 11.0, 25.0]);
/// ```
pub fn matmul(
    dims: GemmDims,
    alpha: f32,
    a: MatView<'_>,
    b: MatView<'_>,
    beta: f32,
    c: MatViewMut<'_>,
    par: Parallelism,
) -> Result<(), KernelError> {
    let GemmDims { batch, m, n, k } = dims;
    check_min_len("matmul A", a.data.len(), a.layout.min_len(batch, m, k)?)?;
    check_min_len("matmul B", b.data.len(), b.layout.min_len(batch, k, n)?)?;
    check_min_len("matmul C", c.data.len(), c.layout.min_len(batch, m, n)?)?;
    let cl = c.layout;
    let row_major_c = cl.col_stride == 1 && (m <= 1 || cl.row_stride >= n);
    let col_major_c = cl.row_stride == 1 && (n <= 1 || cl.col_stride >= m);
    if !(row_major_c || col_major_c) {
        return Err(KernelError::Shape(format!(
            "matmul C: strides ({}, {}) must have one stride 1 and not overlap [{m}, {n}]",
            cl.row_stride, cl.col_stride
        )));
    }
    let footprint = c.layout.min_len(1, m, n)?.saturating_sub(cl.offset);
    if batch > 1 && m > 0 && n > 0 && cl.batch_stride < footprint {
        return Err(KernelError::Shape("matmul C: batches overlap".into()));
    }
    if batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    let par = par.for_gemm(m, n, k);
    let (mut a_pack, mut b_pack) = (Vec::new(), Vec::new());
    for bi in 0..batch {
        let start = cl.offset + bi * cl.batch_stride;
        let c_slice = &mut c.data[start..start + footprint];
        let mut c_mat = if row_major_c {
            row_major_mut(c_slice, m, n, cl.row_stride.max(n))
        } else {
            MatMut::from_column_major_slice_with_stride_mut(c_slice, m, n, cl.col_stride.max(m))
        };
        if k == 0 || alpha == 0.0 {
            scale(c_mat.as_mut(), beta);
            continue;
        }
        let accum = if beta == 0.0 {
            Accum::Replace
        } else {
            if beta != 1.0 {
                scale(c_mat.as_mut(), beta);
            }
            Accum::Add
        };
        let a_mat = view(a.data, a.layout, bi, m, k, &mut a_pack);
        let b_mat = view(b.data, b.layout, bi, k, n, &mut b_pack);
        faer_matmul(c_mat, accum, a_mat, b_mat, alpha, par.to_faer());
    }
    Ok(())
}

/// A row-major `[rows, cols]` view with row stride `stride` (at least `cols`).
///
/// Built as the transpose of a column-major view because faer 0.22–0.24's
/// `MatMut::from_row_major_slice_with_stride_mut` sets the strides the wrong way round (it checks
/// row-major bounds, then builds a column-major view: out-of-bounds writes from safe code).
pub(crate) fn row_major_mut(
    slice: &mut [f32],
    rows: usize,
    cols: usize,
    stride: usize,
) -> MatMut<'_, f32> {
    MatMut::from_column_major_slice_with_stride_mut(slice, cols, rows, stride).transpose_mut()
}

/// `C *= beta` (`beta == 0` writes zeros, ignoring NaNs already there).
fn scale(mut c: MatMut<'_, f32>, beta: f32) {
    for j in 0..c.ncols() {
        for i in 0..c.nrows() {
            let v = &mut c[(i, j)];
            *v = if beta == 0.0 { 0.0 } else { *v * beta };
        }
    }
}

/// Matrix `bi` of a validated view, as a faer view; packs it into `pack` when neither stride is 1.
fn view<'a>(
    data: &'a [f32],
    l: MatLayout,
    bi: usize,
    rows: usize,
    cols: usize,
    pack: &'a mut Vec<f32>,
) -> MatRef<'a, f32> {
    let start = l.offset + bi * l.batch_stride;
    let data = &data[start..];
    if l.col_stride == 1 {
        MatRef::from_row_major_slice_with_stride(data, rows, cols, l.row_stride)
    } else if l.row_stride == 1 {
        MatRef::from_column_major_slice_with_stride(data, rows, cols, l.col_stride)
    } else {
        pack.clear();
        pack.extend(
            (0..rows)
                .flat_map(|i| (0..cols).map(move |j| (i, j)))
                .map(|(i, j)| data[i * l.row_stride + j * l.col_stride]),
        );
        MatRef::from_row_major_slice(pack.as_slice(), rows, cols)
    }
}

#[cfg(test)]
mod tests {
    use super::super::linear::linear;
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Naive f64 reference over the same layouts.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        d: GemmDims,
        alpha: f32,
        a: &[f32],
        al: MatLayout,
        b: &[f32],
        bl: MatLayout,
        beta: f32,
        c: &[f32],
        cl: MatLayout,
    ) -> Vec<f64> {
        let mut out: Vec<f64> = c.iter().map(|&v| v as f64).collect();
        for bi in 0..d.batch {
            for i in 0..d.m {
                for j in 0..d.n {
                    let mut s = 0.0f64;
                    for p in 0..d.k {
                        let av = a[al.offset
                            + bi * al.batch_stride
                            + i * al.row_stride
                            + p * al.col_stride];
                        let bv = b[bl.offset
                            + bi * bl.batch_stride
                            + p * bl.row_stride
                            + j * bl.col_stride];
                        s += av as f64 * bv as f64;
                    }
                    let idx =
                        cl.offset + bi * cl.batch_stride + i * cl.row_stride + j * cl.col_stride;
                    let old = if beta == 0.0 { 0.0 } else { beta as f64 * c[idx] as f64 };
                    out[idx] = alpha as f64 * s + old;
                }
            }
        }
        out
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g as f64 - w).abs() <= tol * (1.0 + w.abs()), "at {i}: {g} vs {w}");
        }
    }

    #[test]
    fn layouts_and_betas() {
        let d = GemmDims { batch: 3, m: 7, n: 5, k: 9 };
        // A transposed in memory ([k, m] storage), B row-major with padding and offset, C col-major.
        let al = MatLayout::row_major(d.k, d.m).transposed();
        let bl = MatLayout { offset: 3, row_stride: 8, col_stride: 1, batch_stride: 80 };
        let cl = MatLayout { offset: 1, row_stride: 1, col_stride: 7, batch_stride: 40 };
        let a = data(3 * d.m * d.k, 1);
        let b = data(3 + 3 * 80, 2);
        for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (2.0, -0.75)] {
            for par in [Parallelism::Sequential, Parallelism::Threads(2)] {
                let c0 = data(1 + 3 * 40, 3);
                let want = reference(d, alpha, &a, al, &b, bl, beta, &c0, cl);
                let mut c = c0.clone();
                matmul(
                    d,
                    alpha,
                    MatView { data: &a, layout: al },
                    MatView { data: &b, layout: bl },
                    beta,
                    MatViewMut { data: &mut c, layout: cl },
                    par,
                )
                .unwrap();
                assert_close(&c, &want, 1e-5);
            }
        }
    }

    #[test]
    fn general_strides_are_packed_and_k_zero_scales() {
        let d = GemmDims { batch: 1, m: 4, n: 3, k: 5 };
        let al = MatLayout { offset: 0, row_stride: 2, col_stride: 9, batch_stride: 0 };
        let a = data(2 * 3 + 9 * 4 + 1, 4);
        let bl = MatLayout::row_major(d.k, d.n);
        let b = data(15, 5);
        let cl = MatLayout::row_major(d.m, d.n);
        let c0 = data(12, 6);
        let want = reference(d, 1.5, &a, al, &b, bl, 0.5, &c0, cl);
        let mut c = c0.clone();
        let (av, bv) = (MatView { data: &a, layout: al }, MatView { data: &b, layout: bl });
        matmul(
            d,
            1.5,
            av,
            bv,
            0.5,
            MatViewMut { data: &mut c, layout: cl },
            Parallelism::Sequential,
        )
        .unwrap();
        assert_close(&c, &want, 1e-5);

        let mut c = c0.clone();
        let d0 = GemmDims { k: 0, ..d };
        matmul(
            d0,
            1.0,
            av,
            bv,
            2.0,
            MatViewMut { data: &mut c, layout: cl },
            Parallelism::Sequential,
        )
        .unwrap();
        let doubled: Vec<f64> = c0.iter().map(|&v| 2.0 * v as f64).collect();
        assert_close(&c, &doubled, 1e-6);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = vec![0.0; 6];
        let mut out = vec![0.0; 6];
        let err = linear(&x, &x, None, 2, 3, 3, &mut out, Parallelism::Sequential).unwrap_err();
        assert!(matches!(err, KernelError::Length { what: "linear w", expected: 9, actual: 6 }));
        let d = GemmDims { batch: 1, m: 2, n: 2, k: 2 };
        let l = MatLayout::row_major(2, 2);
        let bad = MatLayout { row_stride: 1, col_stride: 1, ..l };
        let err = matmul(
            d,
            1.0,
            MatView { data: &x, layout: l },
            MatView { data: &x, layout: l },
            0.0,
            MatViewMut { data: &mut out, layout: bad },
            Parallelism::Sequential,
        )
        .unwrap_err();
        assert!(matches!(err, KernelError::Shape(_)));
    }
}
