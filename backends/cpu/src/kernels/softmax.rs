//! Numerically stable softmax over the rows of a row-major block.

use super::error::KernelError;
use super::math::{exp, max, simd};

/// Softmax of one row in place (max subtracted first). Also used by attention.
#[inline(always)]
pub(crate) fn softmax_row(row: &mut [f32]) {
    let m = max(row);
    let mut acc = [0.0f32; 16];
    for chunk in row.chunks_mut(16) {
        for (a, v) in acc.iter_mut().zip(chunk.iter_mut()) {
            *v = exp(*v - m);
            *a += *v;
        }
    }
    let inv = 1.0 / acc.iter().sum::<f32>();
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// In place, each row of `cols` elements of `x` becomes `exp(x - max) / sum(exp(x - max))`.
///
/// ```
/// let mut x = [0.0f32, 0.0, 1000.0, 1000.0];
/// streampool_cpu::kernels::softmax_rows(&mut x, 2).unwrap();
/// assert_eq!(x, [0.5; 4]);
/// ```
pub fn softmax_rows(x: &mut [f32], cols: usize) -> Result<(), KernelError> {
    if cols == 0 || x.len() % cols != 0 {
        return Err(KernelError::Shape(format!(
            "softmax: {} elements are not whole rows of {cols}",
            x.len()
        )));
    }
    simd!([x: &'a mut [f32] = x, cols: usize = cols] {
        for row in x.chunks_exact_mut(cols) {
            softmax_row(row);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference() {
        let cols = 37;
        let mut x: Vec<f32> = (0..cols * 3).map(|i| (i as f32 * 0.77).sin() * 20.0).collect();
        x[5] = f32::MIN; // a masked score
        let want: Vec<f64> = x
            .chunks(cols)
            .flat_map(|r| {
                let m = r.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
                let s: f64 = r.iter().map(|&v| (v as f64 - m).exp()).sum();
                r.iter().map(move |&v| (v as f64 - m).exp() / s).collect::<Vec<_>>()
            })
            .collect();
        softmax_rows(&mut x, cols).unwrap();
        for (g, w) in x.iter().zip(&want) {
            assert!((*g as f64 - w).abs() <= 1e-5 * w + 1e-9, "{g} vs {w}");
        }
        assert_eq!(x[5], 0.0);
        assert!(softmax_rows(&mut x, 36).is_err());
    }
}
