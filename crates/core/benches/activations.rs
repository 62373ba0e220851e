//! Criterion benchmarks of the elementwise activations on a `[128, 256]` f32 batch (the hidden
//! layer of an MLP at batch 128): the forward alone, and forward + backward (through a sum).
//! `cargo bench -p nabla-core --bench activations`; a 128x784x256 matrix product, the layer
//! before, is timed alongside for scale.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nabla_core::{DType, Result, Rng, Tensor, Var};
use std::hint::black_box;

type Activation = fn(&Tensor) -> Result<Tensor>;

fn activations() -> [(&'static str, Activation); 8] {
    [
        ("relu", Tensor::relu),
        ("leaky_relu", |x| x.leaky_relu(0.01)),
        ("sigmoid", Tensor::sigmoid),
        ("tanh", Tensor::tanh),
        ("elu", |x| x.elu(1.0)),
        ("gelu", Tensor::gelu),
        ("exp", Tensor::exp),
        ("log", |x| x.abs()?.log()),
    ]
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng::seed(0);
    let x = Tensor::randn([128, 256], 0.0, 2.0, DType::F32, &mut rng).unwrap();
    let var = Var::new(&x).unwrap();
    let mut forward = c.benchmark_group("activation_f32_128x256_forward");
    forward.throughput(Throughput::Elements(x.elem_count() as u64));
    for (name, op) in activations() {
        forward.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(op(&x).unwrap()))
        });
    }
    forward.finish();
    let mut both = c.benchmark_group("activation_f32_128x256_forward_backward");
    both.throughput(Throughput::Elements(x.elem_count() as u64));
    for (name, op) in activations() {
        both.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let y = op(&var.as_tensor()).unwrap().sum_all().unwrap();
                black_box(y.backward().unwrap())
            })
        });
    }
    both.finish();
    let a = Tensor::randn([128, 784], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let w = Tensor::randn([784, 256], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    c.bench_function("matmul_f32_128x784x256_for_scale", |b| {
        b.iter(|| black_box(a.matmul(&w).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
