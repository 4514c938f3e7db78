//! Writing embeddings as a NumPy `.npy` file (format 1.0), row by row: `numpy.load` reads it as
//! an array of shape `[rows, dim]`, f32 (`<f4`) or f16 (`<f2`). The row count is only known at
//! the end of a corpus, so the header is written with room to spare and rewritten by
//! [`NpyWriter::finish`] (the output must be seekable: a file, not a pipe).
//!
//! ```
//! use std::io::Cursor;
//! use streampool_engine::npy::{NpyDtype, NpyWriter};
//!
//! let mut npy = NpyWriter::new(Cursor::new(Vec::new()), 3, NpyDtype::F32)?;
//! npy.write_row(&[1.0, 2.0, 3.0])?;
//! npy.write_row(&[4.0, 5.0, 6.0])?;
//! let bytes = npy.finish()?.into_inner();
//! assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
//! assert!(String::from_utf8_lossy(&bytes).contains("'shape': (2, 3)"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{Seek, SeekFrom, Write};

/// Element type of the array written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum NpyDtype {
    /// Little-endian f32 (`<f4`).
    #[default]
    F32,
    /// Little-endian IEEE half (`<f2`): half the size, about 3 decimal digits.
    F16,
}

impl NpyDtype {
    fn descr(self) -> &'static str {
        match self {
            Self::F32 => "<f4",
            Self::F16 => "<f2",
        }
    }
}

/// Bytes of the header, magic and length included: fixed, so that the final header (any row
/// count up to 20 digits) fits where the first one was written. A multiple of 64, as the format
/// recommends for alignment.
const HEADER: usize = 128;

/// The header for `rows × dim` of `dtype`, padded with spaces to [`HEADER`] bytes.
fn header(rows: usize, dim: usize, dtype: NpyDtype) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {dim}), }}",
        dtype.descr()
    );
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    let len = HEADER - out.len() - 2;
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(HEADER - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes rows of `dim` values as a `.npy` array; [`NpyWriter::finish`] fixes the row count.
#[derive(Debug)]
pub struct NpyWriter<W: Write + Seek> {
    out: W,
    dim: usize,
    dtype: NpyDtype,
    rows: usize,
    /// Where the header starts in `out`.
    start: u64,
}

impl<W: Write + Seek> NpyWriter<W> {
    /// Start an array of rows of `dim` values in `dtype` at `out`'s current position.
    pub fn new(mut out: W, dim: usize, dtype: NpyDtype) -> std::io::Result<Self> {
        let start = out.stream_position()?;
        out.write_all(&header(0, dim, dtype))?;
        Ok(Self { out, dim, dtype, rows: 0, start })
    }

    /// Append one row; `InvalidInput` unless it has `dim` values.
    pub fn write_row(&mut self, row: &[f32]) -> std::io::Result<()> {
        self.write_rows(std::slice::from_ref(&row))
    }

    /// Append `rows` (one write); `InvalidInput`, writing none, unless each has `dim` values.
    pub fn write_rows(&mut self, rows: &[impl AsRef<[f32]>]) -> std::io::Result<()> {
        if let Some(row) = rows.iter().find(|r| r.as_ref().len() != self.dim) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a row of {} values in an array of {}", row.as_ref().len(), self.dim),
            ));
        }
        let values = rows.iter().flat_map(|r| r.as_ref().iter().copied());
        let bytes: Vec<u8> = match self.dtype {
            NpyDtype::F32 => values.flat_map(f32::to_le_bytes).collect(),
            NpyDtype::F16 => values.flat_map(|v| half::f16::from_f32(v).to_le_bytes()).collect(),
        };
        self.out.write_all(&bytes)?;
        self.rows += rows.len();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Write the final header (the row count) and flush; returns the output, positioned at
    /// the end of the array.
    pub fn finish(mut self) -> std::io::Result<W> {
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(self.start))?;
        self.out.write_all(&header(self.rows, self.dim, self.dtype))?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// The header's dictionary and the data after it, as `numpy.load` parses them.
    fn parse(bytes: &[u8]) -> (String, &[u8]) {
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0, "data aligned to 64 bytes");
        let dict = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
        assert!(dict.ends_with('\n'));
        (dict.trim_end().to_owned(), &bytes[10 + len..])
    }

    #[test]
    fn f32_rows_read_back_with_their_shape() {
        let rows: Vec<Vec<f32>> =
            (0..5).map(|r| (0..384).map(|c| (r * 384 + c) as f32 / 7.0).collect()).collect();
        let mut npy = NpyWriter::new(Cursor::new(Vec::new()), 384, NpyDtype::F32).unwrap();
        for row in &rows {
            npy.write_row(row).unwrap();
        }
        assert_eq!(npy.rows(), 5);
        let bytes = npy.finish().unwrap().into_inner();
        let (dict, data) = parse(&bytes);
        assert_eq!(dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 384), }");
        let values: Vec<f32> =
            data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(values, rows.concat());
    }

    #[test]
    fn f16_rows_are_rounded_to_half() {
        let mut npy = NpyWriter::new(Cursor::new(Vec::new()), 2, NpyDtype::F16).unwrap();
        npy.write_row(&[0.1, -2.5]).unwrap();
        let bytes = npy.finish().unwrap().into_inner();
        let (dict, data) = parse(&bytes);
        assert!(dict.contains("'descr': '<f2'") && dict.contains("'shape': (1, 2)"), "{dict}");
        let values: Vec<f32> =
            data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        assert_eq!(values, [half::f16::from_f32(0.1).to_f32(), -2.5]);
    }

    #[test]
    fn an_empty_array_and_a_wrong_row() {
        let mut npy = NpyWriter::new(Cursor::new(Vec::new()), 4, NpyDtype::F32).unwrap();
        let e = npy.write_row(&[1.0]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let bytes = npy.finish().unwrap().into_inner();
        let (dict, data) = parse(&bytes);
        assert!(dict.contains("'shape': (0, 4)"), "{dict}");
        assert!(data.is_empty());
    }

    #[test]
    fn the_largest_row_count_still_fits_the_header() {
        assert_eq!(header(usize::MAX, 100_000, NpyDtype::F32).len(), HEADER);
        assert_eq!(header(0, 1, NpyDtype::F16).len(), HEADER);
    }
}
