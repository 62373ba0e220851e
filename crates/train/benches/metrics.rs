//! Criterion benchmark of the training metrics on a character model's batch: logits
//! `[64, 100, 63]` (batch 64, 100 steps, 63 characters) against their `[64, 100]` targets,
//! the batch that `MetricAccumulator::add` sees at every step of `examples/kjv_lstm.toml`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nabla_core::{DType, Rng, Tensor};
use nabla_train::{MetricAccumulator, OutputKind};
use std::hint::black_box;

fn char_model_batch(c: &mut Criterion) {
    let (batch, steps, classes) = (64, 100, 63);
    let mut rng = Rng::seed(0);
    let logits = Tensor::randn([batch, steps, classes], 0.0, 3.0, DType::F32, &mut rng).unwrap();
    let targets: Vec<i64> = (0..batch * steps)
        .map(|i| (i * 7 % classes) as i64)
        .collect();
    let targets = Tensor::from_vec(targets, [batch, steps]).unwrap();
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements((batch * steps) as u64));
    group.bench_function("multiclass_[64,100,63]_f32", |bench| {
        bench.iter(|| {
            let mut acc = MetricAccumulator::default();
            acc.add(OutputKind::MultiClass, 1.0, &logits, &targets)
                .unwrap();
            black_box(acc)
        })
    });
    group.finish();
}

criterion_group!(benches, char_model_batch);
criterion_main!(benches);
