//! `contiguous()`: gather an arbitrary strided view into a dense row-major buffer.

use super::error::{check_len, prod, KernelError};

/// Copies the view `src[offset + sum_d i_d * strides[d]]`, `i_d < shape[d]`, into `dst` in
/// row-major order. Strides may be negative (flipped views) or zero (broadcasts); every reachable
/// index is checked to lie in `src` first. Works for any element type and rank.
///
/// ```
/// // The transpose of a 2x3 matrix.
/// let src = [1, 2, 3, 4, 5, 6];
/// let mut dst = [0; 6];
/// streampool_cpu::kernels::strided_copy(&src, 0, &[3, 2], &[1, 3], &mut dst).unwrap();
/// assert_eq!(dst, [1, 4, 2, 5, 3, 6]);
/// ```
pub fn strided_copy<T: Copy>(
    src: &[T],
    offset: usize,
    shape: &[usize],
    strides: &[isize],
    dst: &mut [T],
) -> Result<(), KernelError> {
    if shape.len() != strides.len() {
        return Err(KernelError::Shape(format!(
            "strided_copy: {} dims but {} strides",
            shape.len(),
            strides.len()
        )));
    }
    check_len("strided_copy dst", dst.len(), prod(shape)?)?;
    if dst.is_empty() {
        return Ok(());
    }
    let (mut lo, mut hi) = (offset as i128, offset as i128);
    for (&n, &s) in shape.iter().zip(strides) {
        let reach = (n as i128 - 1) * s as i128;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    if lo < 0 || hi >= src.len() as i128 {
        return Err(KernelError::Length {
            what: "strided_copy src",
            expected: (hi + 1).max(0) as usize,
            actual: src.len(),
        });
    }
    // Every index below lies in [lo, hi], so the arithmetic can neither leave src nor overflow.
    let Some((&inner, outer)) = shape.split_last() else {
        dst[0] = src[offset];
        return Ok(());
    };
    let inner_stride = strides[strides.len() - 1];
    let outer_strides = &strides[..outer.len()];
    let mut idx = vec![0usize; outer.len()];
    let mut base = offset as isize;
    for out_row in dst.chunks_exact_mut(inner) {
        if inner_stride == 1 {
            out_row.copy_from_slice(&src[base as usize..][..inner]);
        } else {
            for (j, o) in out_row.iter_mut().enumerate() {
                *o = src[(base + j as isize * inner_stride) as usize];
            }
        }
        // Odometer increment of the outer index.
        for d in (0..outer.len()).rev() {
            idx[d] += 1;
            base += outer_strides[d];
            if idx[d] < outer[d] {
                break;
            }
            base -= outer_strides[d] * outer[d] as isize;
            idx[d] = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuted_sliced_flipped_broadcast() {
        // src: a [2, 3, 4, 5] tensor holding its own linear index.
        let src: Vec<f32> = (0..120).map(|i| i as f32).collect();
        // [i3 in 1..4, i2 flipped over 0..3, i0, i1] under a broadcast leading dim of 2.
        let shape = [2, 3, 3, 2, 3];
        let strides = [0isize, 1, -5, 60, 20];
        let offset = 1 + 2 * 5; // start at i3 = 1, i1 = 2 (flipped)
        let mut dst = vec![0.0; 108];
        strided_copy(&src, offset, &shape, &strides, &mut dst).unwrap();
        let mut k = 0;
        for _ in 0..2 {
            for a in 0..3 {
                for b in 0..3 {
                    for c in 0..2 {
                        for d in 0..3 {
                            let want = c * 60 + d * 20 + (2 - b) * 5 + (a + 1);
                            assert_eq!(dst[k], want as f32);
                            k += 1;
                        }
                    }
                }
            }
        }
        let mut one = [0.0];
        strided_copy(&src, 7, &[], &[], &mut one).unwrap();
        assert_eq!(one, [7.0]);
        let err = strided_copy(&src, 0, &[2, 2], &[-1, 1], &mut [0.0; 4]).unwrap_err();
        assert!(matches!(err, KernelError::Length { .. }));
        assert!(strided_copy(&src, 0, &[2, 61], &[61, 1], &mut vec![0.0; 122]).is_err());
        assert!(strided_copy(&src, 0, &[2], &[1, 1], &mut [0.0; 2]).is_err());
    }
}
