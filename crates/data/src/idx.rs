//! IDX files (the MNIST format), plain or gzip-compressed: a big-endian header
//! `0x00 0x00 type rank`, `rank` u32 dims, then the elements row-major. nabla reads unsigned-byte
//! data (type 0x08), which is what MNIST and Fashion-MNIST use.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// An IDX array: its dims and its bytes, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes; gzip is detected from the file's first bytes.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::file(path, format!("corrupt gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|message| Error::file(path, message))
}

/// Parses IDX bytes (already decompressed).
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (the first two bytes must be zero)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "IDX element type 0x{:02x} is not supported (nabla reads unsigned bytes, 0x08)",
            bytes[2]
        ));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(format!("truncated IDX header (rank {rank})"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("IDX dims overflow")?;
    let body = &bytes[header..];
    if body.len() != count {
        return Err(format!(
            "IDX dims {dims:?} need {count} bytes of data, the file has {}",
            body.len()
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}
