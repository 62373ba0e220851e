//! Checkpoints: model weights and optimizer state in safetensors files, written atomically
//! (a temporary file in the same folder, flushed to disk, then renamed over the target), so that
//! a crash at any moment leaves either the old complete file or the new one.
//!
//! Names, layouts and dtypes are PyTorch's (`0.weight` is `[out, in]`, BatchNorm buffers
//! `running_mean` / `running_var` and the i64 scalar `num_batches_tracked`), so a `Sequential` of the same layers loads the file with
//! `load_state_dict(safetensors.torch.load_file(path), strict=True)`.

use crate::error::{Error, Result, io};
use crate::trainer::History;
use nabla_core::{DType, Tensor, Var};
use nabla_nn::optim::OptimizerState;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: temp file beside it, fsync, rename, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An element type stored in safetensors files: its dtype tag and little-endian encoding.
trait LeBytes: nabla_core::Element {
    const TAG: Dtype;
    const SIZE: usize;
    fn write_le(self, out: &mut Vec<u8>);
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! le_bytes {
    ($($t:ty => $dtype:ident),*) => {$(
        impl LeBytes for $t {
            const TAG: Dtype = Dtype::$dtype;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("chunks of SIZE bytes"))
            }
        }
    )*};
}
le_bytes!(f32 => F32, f64 => F64, i64 => I64);

fn encode<T: LeBytes>(t: &Tensor) -> Result<(Dtype, Vec<u8>)> {
    let data = t.contiguous_data::<T>()?;
    let mut out = Vec::with_capacity(data.len() * T::SIZE);
    data.iter().for_each(|v| v.write_le(&mut out));
    Ok((T::TAG, out))
}

fn decode<T: LeBytes>(data: &[u8], shape: Vec<usize>) -> Result<Tensor> {
    let values: Vec<T> = data.chunks_exact(T::SIZE).map(T::read_le).collect();
    Ok(Tensor::from_vec(values, shape)?)
}

fn to_bytes(t: &Tensor) -> Result<(Dtype, Vec<u8>)> {
    match t.dtype() {
        DType::F32 => encode::<f32>(t),
        DType::F64 => encode::<f64>(t),
        DType::I64 => encode::<i64>(t),
    }
}

/// Serializes named tensors (and string metadata) to safetensors bytes.
pub fn serialize(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let (dtype, bytes) = to_bytes(t)?;
            Ok((n.clone(), dtype, t.dims().to_vec(), bytes))
        })
        .collect::<Result<_>>()?;
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Invalid(format!("tensor {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::serialize(views, metadata).map_err(|e| Error::Invalid(e.to_string()))?;
    sorted_header(bytes)
}

/// The same safetensors bytes with the header's keys in sorted order. safetensors writes the
/// metadata from a `HashMap`, whose order changes from map to map, so identical contents gave
/// different bytes; sorted, the same state always gives the same file.
fn sorted_header(bytes: Vec<u8>) -> Result<Vec<u8>> {
    let bad = |what: &str| Error::Invalid(format!("safetensors header: {what}"));
    let len: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("too short"))?;
    let end = 8 + usize::try_from(u64::from_le_bytes(len)).map_err(|_| bad("too long"))?;
    let header = bytes.get(8..end).ok_or_else(|| bad("truncated"))?;
    let mut entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| bad(&e.to_string()))?;
    if let Some(serde_json::Value::Object(meta)) = entries.get("__metadata__") {
        let meta: BTreeMap<String, serde_json::Value> = meta.clone().into_iter().collect();
        entries.insert("__metadata__".into(), serde_json::json!(meta));
    }
    let mut json = serde_json::to_vec(&entries).map_err(|e| bad(&e.to_string()))?;
    // The data that follows stays aligned: the header is padded with spaces to 8 bytes.
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - end);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[end..]);
    Ok(out)
}

/// Reads every tensor of a safetensors file (f32, f64 and i64), with its metadata.
pub fn read_tensors(path: &Path) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    decode_tensors(path, &bytes)
}

/// Decodes the bytes of a safetensors file; `path` names it in errors.
pub fn decode_tensors(
    path: &Path,
    bytes: &[u8],
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bad = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let t = match view.dtype() {
            Dtype::F32 => decode::<f32>(data, shape)?,
            Dtype::F64 => decode::<f64>(data, shape)?,
            Dtype::I64 => decode::<i64>(data, shape)?,
            other => {
                return Err(bad(format!(
                    "tensor {name}: dtype {other:?} is not supported"
                )));
            }
        };
        out.insert(name, t);
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Saves a model's parameters and buffers (`ModuleExt::state_vars`) to `path`, atomically.
pub fn save_weights(path: &Path, vars: &[(String, Var)]) -> Result<()> {
    write_atomic(path, &weights_bytes(vars)?)
}

/// The safetensors bytes of [`save_weights`].
pub fn weights_bytes(vars: &[(String, Var)]) -> Result<Vec<u8>> {
    let tensors: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
        .collect();
    serialize(&tensors, None)
}

/// Loads weights saved by [`save_weights`] (or by PyTorch's `safetensors.torch.save_file` on a
/// `state_dict`) into `vars`. Every variable must be present with its shape and dtype, and names
/// the model lacks are an error too (PyTorch's `strict=True`). The one exception is as in
/// PyTorch: a file without BatchNorm's `num_batches_tracked` (saved before it existed) loads,
/// and the count stays as it is.
pub fn load_weights(path: &Path, vars: &[(String, Var)]) -> Result<()> {
    let (tensors, _) = read_tensors(path)?;
    let bad = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let vars: Vec<&(String, Var)> = vars
        .iter()
        .filter(|(n, _)| tensors.contains_key(n) || !may_be_missing(n))
        .collect();
    let missing: Vec<&str> = vars
        .iter()
        .filter(|(n, _)| !tensors.contains_key(n))
        .map(|(n, _)| n.as_str())
        .collect();
    let unexpected: Vec<&str> = tensors
        .keys()
        .filter(|k| !vars.iter().any(|(n, _)| n == *k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(bad(format!(
            "does not fit the model: missing {missing:?}, unexpected {unexpected:?}"
        )));
    }
    // Check everything before changing anything.
    for (name, var) in &vars {
        let t = &tensors[name];
        if t.shape() != &var.shape() || t.dtype() != var.dtype() {
            return Err(bad(format!(
                "{name}: the file has {} {}, the model {} {}",
                t.dtype(),
                t.shape(),
                var.dtype(),
                var.shape()
            )));
        }
    }
    for (name, var) in &vars {
        var.set(&tensors[name])?;
    }
    Ok(())
}

/// Whether a saved file may lack the variable `name`: BatchNorm's `num_batches_tracked`, which
/// files from before it was saved (and PyTorch state dicts of old versions) do not have. Loading
/// leaves such a variable as it is.
pub fn may_be_missing(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// Saves an optimizer's state: its buffers as tensors, its step counts and learning rate as
/// metadata (`step:{param}`, `learning_rate`, `optimizer`).
pub fn save_optimizer(path: &Path, name: &str, state: &OptimizerState) -> Result<()> {
    write_atomic(path, &optimizer_bytes(name, state)?)
}

/// The safetensors bytes of [`save_optimizer`].
pub fn optimizer_bytes(name: &str, state: &OptimizerState) -> Result<Vec<u8>> {
    let tensors: Vec<(String, Tensor)> = state
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    let mut meta: HashMap<String, String> = state
        .steps
        .iter()
        .map(|(n, s)| (format!("step:{n}"), s.to_string()))
        .collect();
    // Exact round trip of the f64 learning rate: its bits in hex.
    meta.insert(
        "learning_rate".into(),
        format!("{:016x}", state.learning_rate.to_bits()),
    );
    meta.insert("optimizer".into(), name.to_string());
    serialize(&tensors, Some(meta))
}

/// Reads an optimizer state saved by [`save_optimizer`]; returns the optimizer's name too.
pub fn load_optimizer(path: &Path) -> Result<(String, OptimizerState)> {
    let (tensors, meta) = read_tensors(path)?;
    let bad = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let lr_bits = meta
        .get("learning_rate")
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| bad("no learning_rate in the metadata".into()))?;
    let mut steps = BTreeMap::new();
    for (k, v) in &meta {
        if let Some(param) = k.strip_prefix("step:") {
            let step = v
                .parse()
                .map_err(|_| bad(format!("step of {param} is not a number: {v:?}")))?;
            steps.insert(param.to_string(), step);
        }
    }
    let name = meta.get("optimizer").cloned().unwrap_or_default();
    Ok((
        name,
        OptimizerState {
            tensors,
            steps,
            learning_rate: f64::from_bits(lr_bits),
        },
    ))
}

/// Saves a training history as JSON, atomically (with the weights and optimizer state it is what
/// a resumed run needs).
pub fn save_history(path: &Path, history: &History) -> Result<()> {
    let json = crate::readable_json::to_vec(history)
        .map_err(|e| Error::Invalid(format!("history: {e}")))?;
    write_atomic(path, &json)
}

/// Reads a history saved by [`save_history`].
pub fn load_history(path: &Path) -> Result<History> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!("not a training history: {e}"),
    })
}
