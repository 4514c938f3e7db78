//! Scalar building blocks written so the compiler vectorises them: a polynomial `exp`, the
//! Abramowitz–Stegun `erf` (the one PyTorch's vectorised CPU `erf` uses), multi-accumulator sums,
//! and [`simd`], which runs a closure inside pulp's runtime-detected AVX2/AVX-512 context so the
//! loops it inlines are compiled for the wider vectors.

/// Runs `$body` (a block using the listed bindings) compiled for the best instruction set detected
/// at run time, through pulp's safe dispatch. The body goes into an `#[inline(always)]`
/// `WithSimd::with_simd`, so it and the `#[inline(always)]` helpers it calls are compiled with
/// AVX2/AVX-512 enabled; a plain closure may stay out of line and compile for baseline x86-64.
macro_rules! simd {
    ([$($name:ident: $ty:ty = $val:expr),* $(,)?] $body:block) => {{
        #[allow(non_camel_case_types)]
        struct Op<'a> { $($name: $ty,)* _life: std::marker::PhantomData<&'a ()> }
        impl pulp::WithSimd for Op<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) {
                let Op { $($name,)* .. } = self;
                $body
            }
        }
        pulp::Arch::new().dispatch(Op { $($name: $val,)* _life: std::marker::PhantomData })
    }};
}
pub(crate) use simd;

/// `e^x` in f32, within about 2 ulp; 0 below -87.3 (where f32 turns subnormal), finite above.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer (ties to even) and leaves that integer in the
    // low mantissa bits, so `2^n` is built with integer ops that vectorise (an `as i32` cast is
    // saturating and compiles to one scalar conversion per lane).
    const SHIFTER: f32 = 12_582_912.0;
    let xc = x.clamp(-87.336_54, 88.376_26);
    let t = xc.mul_add(LOG2E, SHIFTER);
    let n = t - SHIFTER;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let z = r * r;
    let p = 1.987_569_1e-4_f32;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    let p = p.mul_add(r, 0.5);
    let y = p.mul_add(z, r) + 1.0;
    let scale = f32::from_bits(t.to_bits().wrapping_sub(SHIFTER.to_bits()).wrapping_add(127) << 23);
    if x < -87.336_54 {
        0.0
    } else {
        y * scale
    }
}

/// `erf(x)`: Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, as PyTorch's vectorised CPU
/// path), and for `|x| < 0.5`, where that formula loses relative accuracy to cancellation, the
/// Maclaurin series to `x^11` (truncation below 2e-8). Branch-free so it vectorises.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x2 = x * x;
    let series = (-1.0f32 / 1320.0)
        .mul_add(x2, 1.0 / 216.0)
        .mul_add(x2, -1.0 / 42.0)
        .mul_add(x2, 1.0 / 10.0)
        .mul_add(x2, -1.0 / 3.0)
        .mul_add(x2, 1.0)
        * x
        * std::f32::consts::FRAC_2_SQRT_PI;
    let tail = erf_as(x);
    if x.abs() < 0.5 {
        series
    } else {
        tail
    }
}

#[inline(always)]
fn erf_as(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / P.mul_add(a, 1.0);
    let poly = A5.mul_add(t, A4).mul_add(t, A3).mul_add(t, A2).mul_add(t, A1) * t;
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// Lanes of the multi-accumulator reductions (one AVX-512 register of f32).
const LANES: usize = 16;

/// Sum of `x`, with [`LANES`] independent accumulators so it vectorises.
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Sum of `(x - mean)^2`.
#[inline(always)]
pub(crate) fn sum_sq_dev(x: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            let d = v - mean;
            *a = d.mul_add(d, *a);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Maximum of `x` (`-inf` when empty); NaN-free inputs assumed for speed.
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf64(x: f64) -> f64 {
        // Reference erf: the series for small |x|, the continued fraction for larger |x|.
        if x.abs() < 3.0 {
            let mut term = x;
            let mut s = x;
            let x2 = x * x;
            for n in 1..200 {
                term *= -x2 / n as f64;
                s += term / (2 * n + 1) as f64;
            }
            s * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let a = x.abs();
            let mut f = 0.0;
            for n in (1..100).rev() {
                f = (n as f64 / 2.0) / (a + f);
            }
            let erfc = (-a * a).exp() / (a + f) / std::f64::consts::PI.sqrt();
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn exp_matches_f64() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.0435;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(((got - want) / want).abs() < 3e-7, "exp({x}) = {got}, want {want}");
        }
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert!(exp(100.0).is_finite());
    }

    #[test]
    fn erf_matches_f64() {
        for i in -1000..=1000 {
            let x = i as f32 * 0.006;
            let want = erf64(x as f64);
            let got = erf(x) as f64;
            let tol = if x.abs() < 0.5 { 1e-6 * want.abs() + 1e-9 } else { 3e-7 };
            assert!((got - want).abs() < tol, "erf({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn reductions() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let s: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((sum(&x) as f64 - s).abs() < 1e-5);
        let m = s / 37.0;
        let ss: f64 = x.iter().map(|&v| (v as f64 - m).powi(2)).sum();
        assert!((sum_sq_dev(&x, m as f32) as f64 - ss).abs() < 1e-5);
        let mx = x.iter().cloned().fold(f32::MIN, f32::max);
        assert_eq!(max(&x), mx);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }
}
