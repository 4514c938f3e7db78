//! Element type conversions between f32 and the 16-bit floats weights are stored in (via `half`,
//! which uses F16C where the CPU has it).

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::error::{check_len, KernelError};

/// `dst[i] = src[i] as f32`.
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) -> Result<(), KernelError> {
    check_len("f16_to_f32 dst", dst.len(), src.len())?;
    src.convert_to_f32_slice(dst);
    Ok(())
}

/// `dst[i] = src[i] as f32`.
pub fn bf16_to_f32(src: &[bf16], dst: &mut [f32]) -> Result<(), KernelError> {
    check_len("bf16_to_f32 dst", dst.len(), src.len())?;
    src.convert_to_f32_slice(dst);
    Ok(())
}

/// `dst[i] = f16::from_f32(src[i])` (round to nearest even).
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) -> Result<(), KernelError> {
    check_len("f32_to_f16 dst", dst.len(), src.len())?;
    dst.convert_from_f32_slice(src);
    Ok(())
}

/// `dst[i] = bf16::from_f32(src[i])` (round to nearest even).
pub fn f32_to_bf16(src: &[f32], dst: &mut [bf16]) -> Result<(), KernelError> {
    check_len("f32_to_bf16 dst", dst.len(), src.len())?;
    dst.convert_from_f32_slice(src);
    Ok(())
}

/// Little-endian f16 bytes (as in a safetensors file, any alignment) to f32.
pub fn f16_le_bytes_to_f32(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    le_bytes_to_f32(src, dst, |b| f16::from_bits(b).to_f32(), f16_to_f32)
}

/// Little-endian bf16 bytes (as in a safetensors file, any alignment) to f32.
pub fn bf16_le_bytes_to_f32(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    le_bytes_to_f32(src, dst, |b| bf16::from_bits(b).to_f32(), bf16_to_f32)
}

fn le_bytes_to_f32<H: bytemuck::Pod>(
    src: &[u8],
    dst: &mut [f32],
    one: impl Fn(u16) -> f32,
    slice: impl Fn(&[H], &mut [f32]) -> Result<(), KernelError>,
) -> Result<(), KernelError> {
    if src.len() % 2 != 0 {
        return Err(KernelError::Shape(format!("{} bytes are not whole 16-bit values", src.len())));
    }
    check_len("16-bit bytes dst", dst.len(), src.len() / 2)?;
    match bytemuck::try_cast_slice::<u8, H>(src) {
        Ok(halves) if cfg!(target_endian = "little") => slice(halves, dst),
        _ => {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = one(u16::from_le_bytes([b[0], b[1]]));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bytes() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) * 0.173).collect();
        let mut h = vec![f16::ZERO; 100];
        let mut b = vec![bf16::ZERO; 100];
        f32_to_f16(&x, &mut h).unwrap();
        f32_to_bf16(&x, &mut b).unwrap();
        let (mut xh, mut xb) = (vec![0.0; 100], vec![0.0; 100]);
        f16_to_f32(&h, &mut xh).unwrap();
        bf16_to_f32(&b, &mut xb).unwrap();
        for i in 0..100 {
            let v = x[i] as f64;
            assert!((xh[i] as f64 - v).abs() <= v.abs() * 2f64.powi(-11) + 1e-7);
            assert!((xb[i] as f64 - v).abs() <= v.abs() * 2f64.powi(-8) + 1e-7);
        }
        // Bytes at an odd offset (unaligned) and aligned give the same result.
        let mut bytes = vec![0u8];
        bytes.extend(h.iter().flat_map(|v| v.to_bits().to_le_bytes()));
        let mut from_bytes = vec![0.0; 100];
        f16_le_bytes_to_f32(&bytes[1..], &mut from_bytes).unwrap();
        assert_eq!(from_bytes, xh);
        let bb: Vec<u8> = b.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect();
        bf16_le_bytes_to_f32(&bb, &mut from_bytes).unwrap();
        assert_eq!(from_bytes, xb);
        assert!(f16_to_f32(&h, &mut xh[..99]).is_err());
        assert!(bf16_le_bytes_to_f32(&bb[..3], &mut from_bytes).is_err());
    }
}
