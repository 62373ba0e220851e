//! IDX files (the MNIST format), plain or gzip-compressed: a big-endian header
//! `0x00 0x00 type rank`, `rank` u32 dims, then the elements row-major. nabla reads unsigned-byte
//! data (type 0x08), which is what MNIST and Fashion-MNIST use.

use crate::csv::{CsvSchema, Table, Target};
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
    let raw = std::fs::read(path).map_err(Error::io(path))?;
    decode_idx(&raw).map_err(|message| Error::file(path, message))
}

/// The dims of the IDX file at `path` (`[N, 28, 28]` for MNIST's images), read from its
/// header alone.
pub fn idx_dims(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let mut input = open_unzipped(path).map_err(Error::io(path))?;
    let truncated = |_| Error::file(path, "truncated IDX header");
    let mut head = [0u8; 4];
    input.read_exact(&mut head).map_err(truncated)?;
    if head[..2] != [0, 0] {
        return Err(Error::file(
            path,
            "not an IDX file (the first two bytes must be zero)",
        ));
    }
    let mut dims = vec![0u8; 4 * head[3] as usize];
    input.read_exact(&mut dims).map_err(truncated)?;
    Ok(dims
        .chunks(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect())
}

/// Whether the file at `path` is an IDX file (plain or gzip-compressed): its first bytes,
/// gunzipped when they start with gzip's magic, are IDX's `0x00 0x00`. A CSV never starts
/// with a zero byte. A file that cannot be read is not IDX (reading it as a CSV then names
/// the problem).
pub fn is_idx(path: &Path) -> bool {
    let mut head = [0u8; 2];
    open_unzipped(path).is_ok_and(|mut input| input.read_exact(&mut head).is_ok()) && head == [0, 0]
}

/// The file at `path` to read from, through gzip when it starts with gzip's magic.
fn open_unzipped(path: &Path) -> std::io::Result<Box<dyn Read>> {
    use std::io::BufRead;
    let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// Parses the bytes of an IDX file, gunzipping them first when they start with gzip's magic.
pub fn decode_idx(raw: &[u8]) -> std::result::Result<IdxArray, String> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .map_err(|e| format!("corrupt gzip data: {e}"))?;
        parse_idx(&out)
    } else {
        parse_idx(raw)
    }
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

/// An image file and its label file as a table, so that IDX data goes through the same
/// splitting, preprocessing and saved schema as a CSV: each image flattened row-major into
/// features `p0, p1, ...` (pixel values 0-255), the labels as classes `0..=max`. The schema's
/// target column is named `label`, so a model trained on IDX files also reads a CSV with those
/// columns.
pub fn read_idx_table(images: &Path, labels: &Path) -> Result<(Table, CsvSchema)> {
    let x = read_idx(images)?;
    let (rows, width) = examples(images, &x)?;
    let y = read_idx(labels)?;
    if y.dims.len() != 1 {
        return Err(Error::file(
            labels,
            format!("IDX dims {:?}: expected one label per example, [N]", y.dims),
        ));
    }
    if y.dims[0] != rows {
        return Err(Error::file(
            labels,
            format!(
                "{} labels for the {rows} examples of {}",
                y.dims[0],
                images.display()
            ),
        ));
    }
    let classes = y.data.iter().copied().max().map_or(0, |m| m as usize + 1);
    let schema = CsvSchema::pixels(
        width,
        "label",
        (0..classes).map(|c| c.to_string()).collect(),
    );
    let table = Table {
        feature_names: schema.features.iter().map(|f| f.name.clone()).collect(),
        features: x.data.iter().map(|&p| f64::from(p)).collect(),
        rows,
        target: Target::Classes(y.data.iter().map(|&k| i64::from(k)).collect()),
        lines: None,
    };
    Ok((table, schema))
}

/// The examples and their width of an IDX image array: `[N, ...]` flattened per example.
fn examples(images: &Path, x: &IdxArray) -> Result<(usize, usize)> {
    if x.dims.len() < 2 {
        return Err(Error::file(
            images,
            format!(
                "IDX dims {:?}: expected examples x features (e.g. images [N, 28, 28])",
                x.dims
            ),
        ));
    }
    let (rows, width) = (x.dims[0], x.dims[1..].iter().product::<usize>());
    if rows == 0 || width == 0 {
        return Err(Error::file(
            images,
            format!("no data: IDX dims {:?}", x.dims),
        ));
    }
    Ok((rows, width))
}

/// A later IDX image file without labels (data to predict) read against a training schema:
/// the same example width; the table has no target.
pub fn read_idx_images_with(images: &Path, schema: &CsvSchema) -> Result<Table> {
    let x = read_idx(images)?;
    let (rows, width) = examples(images, &x)?;
    check_width(images, width, schema)?;
    Ok(Table {
        feature_names: schema.features.iter().map(|f| f.name.clone()).collect(),
        features: x.data.iter().map(|&p| f64::from(p)).collect(),
        rows,
        target: Target::None,
        lines: None,
    })
}

fn check_width(images: &Path, width: usize, schema: &CsvSchema) -> Result<()> {
    if width != schema.features.len() {
        return Err(Error::file(
            images,
            format!(
                "examples of {width} values, but the model was trained on {}",
                schema.features.len()
            ),
        ));
    }
    Ok(())
}

/// A later IDX pair (test data) read against a training schema: the same example width, and
/// labels among the training classes.
pub fn read_idx_table_with(images: &Path, labels: &Path, schema: &CsvSchema) -> Result<Table> {
    let (table, own) = read_idx_table(images, labels)?;
    check_width(images, own.features.len(), schema)?;
    if own.classes.len() > schema.classes.len() {
        return Err(Error::file(
            labels,
            format!(
                "label {} is not one of the training classes (0 to {})",
                own.classes.len() - 1,
                schema.classes.len().saturating_sub(1)
            ),
        ));
    }
    Ok(table)
}
