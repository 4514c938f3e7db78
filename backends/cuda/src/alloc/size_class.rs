//! Size classes of the caching allocator: requests are rounded up so that blocks of nearby sizes
//! are interchangeable, with bounded waste.

/// Granularity of small blocks (the driver's own alignment is 256 bytes).
const SMALL: usize = 512;
/// Up to this size, classes are multiples of [`SMALL`].
const SMALL_LIMIT: usize = 1 << 20;

/// The block size a request of `bytes` (> 0) gets: a multiple of 512 bytes up to 1 MiB, above
/// that the next of four steps per power of two (at most 25% waste).
///
/// ```
/// use streampool_cuda::alloc::size_class;
/// assert_eq!(size_class(1), 512);
/// assert_eq!(size_class(1000), 1024);
/// assert_eq!(size_class((1 << 20) + 1), 1_310_720); // 1.25 MiB
/// assert_eq!(size_class(3 << 20), 3 << 20);
/// ```
pub fn size_class(bytes: usize) -> usize {
    if bytes <= SMALL_LIMIT {
        return bytes.max(1).div_ceil(SMALL) * SMALL;
    }
    let top = usize::BITS - 1 - bytes.leading_zeros(); // 2^top <= bytes < 2^(top+1)
    let step = 1usize << (top - 2);
    bytes.div_ceil(step).saturating_mul(step)
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn classes_cover_and_bound_waste() {
        for bytes in (1..5_000_000).step_by(997) {
            let c = size_class(bytes);
            assert!(c >= bytes && c % 512 == 0, "{bytes} -> {c}");
            assert!(c <= bytes + 512 || c as f64 <= bytes as f64 * 1.25 + 1.0, "{bytes} -> {c}");
            assert_eq!(size_class(c), c, "a class is its own class");
        }
    }
}
