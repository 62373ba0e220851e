//! Criterion benchmarks of the core kernels, on the same workloads as `nabla bench core`
//! (which prints the figures in the peers' JSON schema).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nabla::commands::bench::{
    gemm_operands, mlp_step, overhead_operands, tiny_layers_step, tiny_mlp_step,
};
use std::hint::black_box;

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_f32");
    let shapes = [
        (256, 256, 256, "nn"),
        (512, 512, 512, "nn"),
        (1024, 1024, 1024, "nn"),
        (32, 784, 256, "nn"),
        (784, 32, 256, "tn"),
        (32, 256, 784, "nt"),
        (128, 784, 256, "nn"),
        (784, 128, 256, "tn"),
        (128, 256, 784, "nt"),
    ];
    for (m, k, n, form) in shapes {
        let (a, b) = gemm_operands(m, k, n, form).unwrap();
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{m}x{k}x{n}_{form}")),
            |bench| bench.iter(|| black_box(a.matmul(&b).unwrap())),
        );
    }
    group.finish();
}

fn overhead(c: &mut Criterion) {
    let (a, b) = overhead_operands().unwrap();
    c.bench_function("add_[8]_recorded", |bench| {
        bench.iter(|| black_box(a.add(&b).unwrap()))
    });
    let mut step = tiny_mlp_step().unwrap();
    c.bench_function("tiny_mlp_2-8-1_train_step", |bench| {
        bench.iter(|| step().unwrap())
    });
}

fn mlp(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_784-256-128-10_adam_train_step");
    for batch in [32, 128, 512] {
        let mut step = mlp_step(batch).unwrap();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::from_parameter(batch), |bench| {
            bench.iter(|| step().unwrap())
        });
    }
    group.finish();
    let mut tiny = tiny_layers_step().unwrap();
    c.bench_function("tiny_2-8-1_layers_sgd_train_step", |bench| {
        bench.iter(|| tiny().unwrap())
    });
}

criterion_group!(benches, gemm, overhead, mlp);
criterion_main!(benches);
