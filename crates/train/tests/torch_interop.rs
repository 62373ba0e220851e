//! PyTorch interoperability of checkpoints, both directions: a nabla `Sequential` saved with
//! `save_weights` loads into the same `torch.nn.Sequential` with `load_state_dict(strict=True)`
//! and predicts the same to 1e-5, and a PyTorch `state_dict` saved as safetensors loads into
//! nabla and predicts the same.
//!
//! Needs a Python with torch: `$NABLA_TORCH_PY`, else `$PEERS_PY` (the peers' venv from
//! `shared/peers/setup_peers_env.sh`). Without one the test prints why and passes vacuously; CI
//! machines have no torch. The safetensors format is read and written by hand in the script
//! (8-byte header length, JSON header, raw little-endian data), so the Python `safetensors`
//! package is not needed.

use nabla_core::{DType, Rng, Tensor};
use nabla_nn::layers::{BatchNorm1d, Linear, Relu, Sequential, Tanh};
use nabla_nn::{Module, ModuleExt};
use nabla_train::checkpoint::{load_weights, read_tensors, save_weights};
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = r#"
import json, struct, sys
import numpy as np, torch, torch.nn as nn

def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n]); data = b[8 + n:]
    out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(data[s:e], dtype=dt).reshape(v["shape"]).copy())
    return out

def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        a = t.detach().contiguous().numpy()
        dt = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}[a.dtype]
        raw = a.tobytes(); header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def model():
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))

mode, weights, inputs, out = sys.argv[1:5]
x = read_st(inputs)["x"]
m = model()
if mode == "load":
    m.load_state_dict(read_st(weights), strict=True)
else:
    torch.manual_seed(0)
    m = model()
    m.train()
    with torch.no_grad():
        for _ in range(3): m(torch.randn(32, 5) * 2 + 1)   # move the BatchNorm running stats
    write_st(weights, m.state_dict())
m.eval()
with torch.no_grad():
    write_st(out, {"y": m(x), "count": m[1].num_batches_tracked})
"#;

fn torch_python() -> Option<String> {
    let candidates = [
        std::env::var("NABLA_TORCH_PY").ok(),
        std::env::var("PEERS_PY").ok(),
    ];
    candidates.into_iter().flatten().find(|py| {
        Command::new(py)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn nabla_model(seed: u64) -> Sequential {
    let mut rng = Rng::seed(seed);
    Sequential::new()
        .with(Linear::new(5, 16, &mut rng).unwrap())
        .with(BatchNorm1d::new(16, DType::F32).unwrap())
        .with(Relu)
        .with(Linear::new(16, 8, &mut rng).unwrap())
        .with(Tanh)
        .with(Linear::new(8, 3, &mut rng).unwrap())
}

/// PyTorch's prediction for `x`, and its BatchNorm's `num_batches_tracked` after the load or the
/// training passes.
fn run_python(py: &str, dir: &Path, mode: &str) -> (Tensor, i64) {
    let script = dir.join("interop.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new(py)
        .arg(&script)
        .args([
            mode,
            "weights.safetensors",
            "x.safetensors",
            "y.safetensors",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = read_tensors(&dir.join("y.safetensors")).unwrap().0;
    let count = out["count"].to_vec::<i64>().unwrap();
    (out["y"].clone(), count[0])
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    a.to_vec::<f32>()
        .unwrap()
        .iter()
        .zip(b.to_vec::<f32>().unwrap())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn setup() -> Option<(String, PathBuf, Tensor)> {
    let Some(py) = torch_python() else {
        eprintln!("skipped: no Python with torch (set NABLA_TORCH_PY or PEERS_PY)");
        return None;
    };
    let dir = std::env::temp_dir().join(format!(
        "nabla-torch-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let x = Tensor::randn([7, 5], 1.0, 2.0, DType::F32, &mut Rng::seed(9)).unwrap();
    let bytes = nabla_train::checkpoint::serialize(&[("x".to_string(), x.clone())], None).unwrap();
    std::fs::write(dir.join("x.safetensors"), bytes).unwrap();
    Some((py, dir, x))
}

#[test]
fn a_nabla_checkpoint_loads_into_pytorch_and_predicts_the_same() {
    let Some((py, dir, x)) = setup() else { return };
    let model = nabla_model(3);
    // Train-mode passes move BatchNorm's running statistics away from (0, 1).
    for s in 0..3 {
        let batch = Tensor::randn([32, 5], 1.0, 2.0, DType::F32, &mut Rng::seed(s)).unwrap();
        model
            .forward(&batch, &mut nabla_nn::Ctx::train(Rng::seed(s)))
            .unwrap();
    }
    save_weights(&dir.join("weights.safetensors"), &model.state_vars()).unwrap();
    let (torch_y, torch_count) = run_python(&py, &dir, "load");
    assert_eq!(
        torch_count, 3,
        "the batch count travels as PyTorch's i64 scalar"
    );
    let nabla_y = model.predict(&x).unwrap();
    let diff = max_diff(&nabla_y, &torch_y);
    assert!(diff <= 1e-5, "max |nabla - torch| = {diff}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_pytorch_state_dict_loads_into_nabla_and_predicts_the_same() {
    let Some((py, dir, x)) = setup() else { return };
    let (torch_y, torch_count) = run_python(&py, &dir, "save");
    let model = nabla_model(42);
    load_weights(&dir.join("weights.safetensors"), &model.state_vars()).unwrap();
    let count = model
        .state_vars()
        .into_iter()
        .find(|(n, _)| n == "1.num_batches_tracked");
    let count = count.unwrap().1.as_tensor().to_vec::<i64>().unwrap();
    assert_eq!((count[0], torch_count), (3, 3));
    let nabla_y = model.predict(&x).unwrap();
    let diff = max_diff(&nabla_y, &torch_y);
    assert!(diff <= 1e-5, "max |nabla - torch| = {diff}");
    std::fs::remove_dir_all(&dir).ok();
}
