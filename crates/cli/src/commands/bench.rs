//! `nabla bench core`: the core kernels and the framework's own overhead, timed the way
//! `shared/peers/bench_peers.py` times the peers (warm-up, then repeats of at least 0.25 s; the
//! value is the median per-iteration time), printed as JSON lines in the peers' schema.

use anyhow::Result;
use nabla_core::{DType, Reduction, Rng, Tensor, Var};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Instant;

/// Timing settings.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub warmup: usize,
    pub min_time_s: f64,
    pub repeats: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            warmup: 5,
            min_time_s: 0.25,
            repeats: 7,
        }
    }
}

/// Per-iteration seconds of `repeats` timed runs, after calibrating the iteration count.
pub fn time_it(timing: Timing, mut step: impl FnMut()) -> Vec<f64> {
    for _ in 0..timing.warmup {
        step();
    }
    let mut iters = 1usize;
    loop {
        let t0 = Instant::now();
        for _ in 0..iters {
            step();
        }
        let dt = t0.elapsed().as_secs_f64();
        if dt >= timing.min_time_s * 0.5 || iters >= 1 << 24 {
            iters = ((iters as f64 * timing.min_time_s / dt.max(1e-9)).ceil() as usize).max(1);
            break;
        }
        iters *= 2;
    }
    (0..timing.repeats)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..iters {
                step();
            }
            t0.elapsed().as_secs_f64() / iters as f64
        })
        .collect()
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// One result line in the peers' schema, with the SIMD level nabla's own loops ran at.
fn line(
    bench: &str,
    config: Value,
    metric: &str,
    unit: &str,
    value: f64,
    samples: &[f64],
    threads: usize,
) -> Value {
    let med = median(samples);
    json!({
        "kind": "result", "bench": bench, "framework": "nabla", "config": config,
        "metric": metric, "unit": unit, "value": value,
        "median_s_per_iter": med,
        "min_s_per_iter": samples.iter().copied().fold(f64::INFINITY, f64::min),
        "max_s_per_iter": samples.iter().copied().fold(0.0, f64::max),
        "repeats": samples.len(), "threads": threads,
        "simd": nabla_core::simd_level().as_str(),
    })
}

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape.to_vec(), 0.0, 1.0, DType::F32, rng).expect("valid shape")
}

/// The operands of `op(A) · op(B)` for an `m x k` by `k x n` product. `form` is "nn", "tn"
/// (Aᵀ·B, A stored k×m) or "nt" (A·Bᵀ, B stored n×k); transposes are views, never copies.
pub fn gemm_operands(m: usize, k: usize, n: usize, form: &str) -> Result<(Tensor, Tensor)> {
    let mut rng = Rng::seed(0);
    let a = match form {
        "tn" => randn(&[k, m], &mut rng).t()?,
        _ => randn(&[m, k], &mut rng),
    };
    let b = match form {
        "nt" => randn(&[n, k], &mut rng).t()?,
        _ => randn(&[k, n], &mut rng),
    };
    Ok((a, b))
}

/// GEMM throughput in GFLOP/s (see [`gemm_operands`]).
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    form: &str,
    timing: Timing,
    threads: usize,
) -> Result<Value> {
    let (a, b) = gemm_operands(m, k, n, form)?;
    let samples = time_it(timing, || {
        black_box(a.matmul(&b).expect("shapes fit"));
    });
    let gflops = 2.0 * (m * n * k) as f64 / median(&samples) / 1e9;
    Ok(line(
        "gemm",
        json!({"m": m, "k": k, "n": n, "form": form, "dtype": "float32"}),
        "gemm_gflops",
        "GFLOP/s",
        gflops,
        &samples,
        threads,
    ))
}

/// The two operands of the overhead benchmark: a `Var`'s value (so the op records its autograd
/// node) and a plain tensor, both `[8]`.
pub fn overhead_operands() -> Result<(Tensor, Tensor)> {
    let mut rng = Rng::seed(0);
    Ok((
        Var::new(&randn(&[8], &mut rng))?.as_tensor(),
        randn(&[8], &mut rng),
    ))
}

/// Median time of recording and running `a + b` (see [`overhead_operands`]), in microseconds.
pub fn op_overhead(timing: Timing, threads: usize) -> Result<Value> {
    let (a, b) = overhead_operands()?;
    let samples = time_it(timing, || {
        black_box(a.add(&b).expect("same shape"));
    });
    Ok(line(
        "op_overhead",
        json!({"op": "add", "shape": [8], "graph": true}),
        "op_latency",
        "us",
        median(&samples) * 1e6,
        &samples,
        threads,
    ))
}

/// The peers' "tiny" workload as a step function: a 2-8-1 tanh MLP on XOR (batch 4), MSE, plain
/// SGD (lr 0.1); one call = forward, backward, update.
pub fn tiny_mlp_step() -> Result<impl FnMut() -> Result<()>> {
    let mut rng = Rng::seed(0);
    let mut init = |shape: &[usize], fan_in: usize| -> Result<Var> {
        let bound = 1.0 / (fan_in as f64).sqrt();
        Ok(Var::new(&Tensor::rand_uniform(
            shape.to_vec(),
            -bound,
            bound,
            DType::F32,
            &mut rng,
        )?)?)
    };
    let params = [
        init(&[2, 8], 2)?,
        init(&[8], 2)?,
        init(&[8, 1], 8)?,
        init(&[1], 8)?,
    ];
    let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2])?;
    let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], [4, 1])?;
    Ok(move || -> Result<()> {
        let [w1, b1, w2, b2] = params.each_ref().map(Var::as_tensor);
        let h = x.matmul(&w1)?.add(&b1)?.tanh()?;
        let loss = h.matmul(&w2)?.add(&b2)?.mse_loss(&y, Reduction::Mean)?;
        let grads = loss.backward()?;
        drop((w1, b1, w2, b2, h, loss));
        for p in &params {
            let g = grads
                .get(p)
                .expect("every parameter is in the graph")
                .to_vec::<f32>()?;
            p.update(|w: &mut [f32]| w.iter_mut().zip(&g).for_each(|(w, g)| *w -= 0.1 * g))?;
        }
        Ok(())
    })
}

/// Steps/s of [`tiny_mlp_step`].
pub fn tiny_mlp(timing: Timing, threads: usize) -> Result<Value> {
    let mut step = tiny_mlp_step()?;
    let samples = time_it(timing, || step().expect("tiny step"));
    Ok(line(
        "tiny",
        json!({"batch": 4}),
        "train_steps_per_s",
        "steps/s",
        1.0 / median(&samples),
        &samples,
        threads,
    ))
}

/// The peers' "mlp" workload through nabla's layers: a 784-256-128-10 ReLU `Sequential`,
/// cross-entropy, Adam (lr 1e-3), cycling over `max(1, 4096 / batch)` random batches; one call =
/// forward, backward, Adam step.
pub fn mlp_step(batch: usize) -> Result<impl FnMut() -> Result<()>> {
    use nabla_nn::layers::{Linear, Relu, Sequential};
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(Linear::new(784, 256, &mut rng)?)
        .with(Relu)
        .with(Linear::new(256, 128, &mut rng)?)
        .with(Relu)
        .with(Linear::new(128, 10, &mut rng)?);
    train_step(model, &[784], batch, (4096 / batch).max(1))
}

/// The tiny 2-8-1 tanh XOR net of [`tiny_mlp_step`], built from nabla's layers and optimizer
/// (`Sequential`, `Linear`, `Tanh`, `Sgd`) as a user would write it.
pub fn tiny_layers_step() -> Result<impl FnMut() -> Result<()>> {
    use nabla_nn::layers::{Linear, Sequential, Tanh};
    use nabla_nn::optim::{Optimizer, Sgd};
    use nabla_nn::{Ctx, Module, ModuleExt};
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(Linear::new(2, 8, &mut rng)?)
        .with(Tanh)
        .with(Linear::new(8, 1, &mut rng)?);
    let params = model.named_parameters();
    let mut sgd = Sgd::new(0.1)?;
    let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], [4, 2])?;
    let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], [4, 1])?;
    Ok(move || -> Result<()> {
        let loss = model
            .forward(&x, &mut Ctx::eval())?
            .mse_loss(&y, Reduction::Mean)?;
        sgd.step(&params, &loss.backward()?)?;
        Ok(())
    })
}

/// Times a training step on `batch` samples and gives its throughput line (samples/s).
fn train_throughput(
    bench: &str,
    config: Value,
    batch: usize,
    mut step: impl FnMut() -> Result<()>,
    timing: Timing,
    threads: usize,
) -> Value {
    let samples = time_it(timing, || step().expect("train step"));
    line(
        bench,
        config,
        "train_throughput",
        "samples/s",
        batch as f64 / median(&samples),
        &samples,
        threads,
    )
}

/// The `mlp` suite: MLP training throughput at batch 32, 128, 512 and the tiny net through the
/// layer API, one JSON value each.
pub fn run_mlp(
    timing: Timing,
    threads: usize,
    mut emit: impl FnMut(&Value) -> std::io::Result<()>,
) -> Result<()> {
    let mut tiny = tiny_layers_step()?;
    let samples = time_it(timing, || tiny().expect("tiny step"));
    emit(&line(
        "tiny",
        json!({"batch": 4, "api": "layers"}),
        "train_throughput",
        "steps/s",
        1.0 / median(&samples),
        &samples,
        threads,
    ))?;
    for batch in [32, 128, 512] {
        let step = mlp_step(batch)?;
        emit(&train_throughput(
            "mlp",
            json!({"batch": batch}),
            batch,
            step,
            timing,
            threads,
        ))?;
    }
    Ok(())
}

/// One train step (forward, cross-entropy, backward, Adam lr 1e-3) of `model`, cycling over
/// `nb` random batches of `batch` inputs of shape `input` and 10 classes.
fn train_step(
    model: impl nabla_nn::Module + 'static,
    input: &[usize],
    batch: usize,
    nb: usize,
) -> Result<impl FnMut() -> Result<()>> {
    use nabla_nn::optim::{Adam, Optimizer};
    use nabla_nn::{Ctx, ModuleExt};
    let mut rng = Rng::seed(1);
    let params = model.named_parameters();
    let mut adam = Adam::new(1e-3)?;
    let mut shape = vec![batch];
    shape.extend_from_slice(input);
    let batches: Vec<(Tensor, Tensor)> = (0..nb)
        .map(|_| {
            let x = randn(&shape, &mut rng);
            let y: Vec<i64> = (0..batch).map(|_| rng.below(10) as i64).collect();
            Ok((x, Tensor::from_vec(y, [batch])?))
        })
        .collect::<Result<_>>()?;
    let mut i = 0;
    Ok(move || -> Result<()> {
        let (x, y) = &batches[i % nb];
        i += 1;
        let out = model.forward(x, &mut Ctx::eval())?;
        let loss = out.cross_entropy(y, Reduction::Mean)?;
        let grads = loss.backward()?;
        drop((out, loss));
        adam.step(&params, &grads)?;
        Ok(())
    })
}

/// The peers' "cnn" workload: 1x28x28 -> conv(8, 3x3) + ReLU + max-pool 2 -> conv(16, 3x3) +
/// ReLU + max-pool 2 -> flatten (400) -> linear 10, batch 64, 16 random batches.
pub fn cnn_step(batch: usize) -> Result<impl FnMut() -> Result<()>> {
    use nabla_nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, Relu, Sequential};
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(Conv2d::builder(1, 8, [3, 3]).build(&mut rng)?)
        .with(Relu)
        .with(MaxPool2d::new(2))
        .with(Conv2d::builder(8, 16, [3, 3]).build(&mut rng)?)
        .with(Relu)
        .with(MaxPool2d::new(2))
        .with(Flatten)
        .with(Linear::new(16 * 5 * 5, 10, &mut rng)?);
    train_step(model, &[1, 28, 28], batch, 16)
}

/// The peers' "lstm" workload with `cell`: one recurrent layer, input 32, hidden 128, 50 steps,
/// batch 32, the last hidden state -> linear 10; 8 random batches.
pub fn recurrent_step(cell: nabla_core::RecurrentCell) -> Result<impl FnMut() -> Result<()>> {
    use nabla_nn::layers::{Linear, Recurrent, SequenceOutput, Sequential};
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(
            Recurrent::builder(cell, 32, 128)
                .output(SequenceOutput::Last)
                .build(&mut rng)?,
        )
        .with(Linear::new(128, 10, &mut rng)?);
    train_step(model, &[50, 32], 32, 8)
}

/// The character model of `examples/kjv_lstm.toml` at its training shape: ids over 63
/// characters -> embedding 32 -> LSTM 256 with a state per step over 100 steps -> linear 63
/// at every step, batch 64, cross-entropy over every step, gradients clipped to norm 5, Adam
/// lr 3e-3; 4 random batches.
pub fn char_model_step() -> Result<impl FnMut() -> Result<()>> {
    use nabla_core::RecurrentCell;
    use nabla_nn::clip::clip_grad_norm;
    use nabla_nn::layers::{Embedding, Linear, Recurrent, SequenceOutput, Sequential};
    use nabla_nn::optim::{Adam, Optimizer};
    use nabla_nn::{Ctx, Module, ModuleExt};
    const VOCAB: usize = 63;
    let (batch, steps) = (64, 100);
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(Embedding::new(VOCAB, 32, &mut rng)?)
        .with(
            Recurrent::builder(RecurrentCell::Lstm, 32, 256)
                .output(SequenceOutput::All)
                .build(&mut rng)?,
        )
        .with(Linear::new(256, VOCAB, &mut rng)?);
    let params = model.named_parameters();
    let vars = model.parameters();
    let mut adam = Adam::new(3e-3)?;
    let mut ids = |n: usize| -> Vec<i64> { (0..n).map(|_| rng.below(VOCAB) as i64).collect() };
    let batches: Vec<(Tensor, Tensor)> = (0..4)
        .map(|_| {
            let x = Tensor::from_vec(ids(batch * steps), [batch, steps])?;
            let y = Tensor::from_vec(ids(batch * steps), [batch * steps])?;
            Ok((x, y))
        })
        .collect::<Result<_>>()?;
    let mut i = 0;
    Ok(move || -> Result<()> {
        let (x, y) = &batches[i % batches.len()];
        i += 1;
        let logits = model
            .forward(x, &mut Ctx::eval())?
            .reshape([batch * steps, VOCAB])?;
        let loss = logits.cross_entropy(y, Reduction::Mean)?;
        let mut grads = loss.backward()?;
        drop((logits, loss));
        clip_grad_norm(&mut grads, &vars, 5.0)?;
        adam.step(&params, &grads)?;
        Ok(())
    })
}

/// The `cnn` suite: the peers' CNN at batch 64.
pub fn run_cnn(
    timing: Timing,
    threads: usize,
    mut emit: impl FnMut(&Value) -> std::io::Result<()>,
) -> Result<()> {
    let step = cnn_step(64)?;
    emit(&train_throughput(
        "cnn",
        json!({"batch": 64}),
        64,
        step,
        timing,
        threads,
    ))?;
    Ok(())
}

/// The `lstm` suite: the peers' LSTM workload, and the same with a GRU and a plain RNN cell.
pub fn run_lstm(
    timing: Timing,
    threads: usize,
    mut emit: impl FnMut(&Value) -> std::io::Result<()>,
) -> Result<()> {
    use nabla_core::RecurrentCell;
    for (bench, cell) in [
        ("lstm", RecurrentCell::Lstm),
        ("gru", RecurrentCell::Gru),
        ("rnn", RecurrentCell::RnnTanh),
    ] {
        let step = recurrent_step(cell)?;
        emit(&train_throughput(
            bench,
            json!({"batch": 32, "input": 32, "hidden": 128, "steps": 50}),
            32,
            step,
            timing,
            threads,
        ))?;
    }
    emit(&train_throughput(
        "char_lstm",
        json!({"batch": 64, "vocab": 63, "embedding": 32, "hidden": 256, "steps": 100}),
        64,
        char_model_step()?,
        timing,
        threads,
    ))?;
    Ok(())
}

/// All core benchmarks, one JSON value each, printed as they finish.
/// Stops at the first error of `emit` (e.g. a closed pipe).
pub fn run_core(
    timing: Timing,
    threads: usize,
    mut emit: impl FnMut(&Value) -> std::io::Result<()>,
) -> Result<()> {
    emit(&op_overhead(timing, threads)?)?;
    emit(&tiny_mlp(timing, threads)?)?;
    for n in [256, 512, 1024, 2048] {
        emit(&gemm(n, n, n, "nn", timing, threads)?)?;
    }
    for batch in [32, 128, 512] {
        emit(&gemm(batch, 784, 256, "nn", timing, threads)?)?; // forward  X·W
        emit(&gemm(784, batch, 256, "tn", timing, threads)?)?; // dW = Xᵀ·dY
        emit(&gemm(batch, 256, 784, "nt", timing, threads)?)?; // dX = dY·Wᵀ
    }
    Ok(())
}

/// The `doctor` suite: the convergence doctor's cost at its default sampling (every 50 steps),
/// as the relative increase of an epoch's time on the same model and data, measured in
/// alternation with the doctor off (validation excluded: it is the same either way).
pub fn run_doctor(
    timing: Timing,
    threads: usize,
    mut emit: impl FnMut(&Value) -> std::io::Result<()>,
) -> Result<()> {
    use nabla_train::experiment::prepare;
    use nabla_train::{History, Trainer};
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for (name, file) in [
        ("digits_mlp", "digits.toml"),
        ("digits_residual_22", "digits_residual.toml"),
        ("sigmoid_mlp_20", "broken/vanishing.toml"),
    ] {
        let located = nabla_train::config::load(&examples.join(file), &[])?;
        let (mut plain, mut watched) = (prepare(&located)?, prepare(&located)?);
        for exp in [&mut plain, &mut watched] {
            exp.train_config.epochs = 1 << 30;
            exp.train_config.early_stopping = None;
            exp.train_config.verbose = false;
        }
        let doctor = watched
            .doctor()
            .ok_or_else(|| anyhow::anyhow!("{file}: the doctor is off in its config"))?;
        let every = located.config.diagnostics.every;
        let data = plain.data.train.clone();
        let mut off = Trainer::new(
            &plain.model,
            plain.optimizer.as_mut(),
            &plain.train_config,
            History::default(),
        )?;
        let mut on = Trainer::new(
            &watched.model,
            watched.optimizer.as_mut(),
            &watched.train_config,
            History::default(),
        )?
        .with_doctor(doctor);
        let epoch = |t: &mut Trainer<'_>| -> Result<f64> {
            let t0 = Instant::now();
            t.run_epoch(&data, None)?;
            Ok(t0.elapsed().as_secs_f64())
        };
        for _ in 0..timing.warmup {
            epoch(&mut off)?;
            epoch(&mut on)?;
        }
        // Alternate, so that both see the same machine load; enough epochs for min_time.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let started = Instant::now();
        while a.len() < 3 * timing.repeats
            || started.elapsed().as_secs_f64() < 4.0 * timing.min_time_s
        {
            a.push(epoch(&mut off)?);
            b.push(epoch(&mut on)?);
        }
        let (ma, mb) = (median(&a), median(&b));
        let mut v = line(
            "doctor",
            json!({"model": name, "every": every, "steps_per_epoch": data.len().div_ceil(plain.train_config.batch_size)}),
            "overhead",
            "fraction",
            mb / ma - 1.0,
            &b,
            threads,
        );
        v["median_s_per_epoch_without"] = json!(ma);
        v["median_s_per_epoch_with"] = json!(mb);
        emit(&v)?;
    }
    Ok(())
}
