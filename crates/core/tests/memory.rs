//! A training loop keeps a flat resident memory: backward releases the graph's buffers, and
//! parameter updates reuse the parameters' storage. (Alone in its test binary, so that no other
//! test allocates while RSS is sampled.)

use nabla_core::{DType, Reduction, Rng, Tensor, Var};

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn ten_thousand_train_steps_keep_memory_flat() {
    let mut rng = Rng::seed(0);
    let params: Vec<Var> = [[16usize, 64], [1, 64], [64, 1], [1, 1]]
        .iter()
        .map(|s| {
            Var::new(&Tensor::randn(s.to_vec(), 0.0, 0.2, DType::F32, &mut rng).unwrap()).unwrap()
        })
        .collect();
    let x = Tensor::randn([32, 16], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let y = x.sum_dims(&[1], true).unwrap().tanh().unwrap();
    let step = |_: usize| -> f32 {
        let p: Vec<Tensor> = params.iter().map(Var::as_tensor).collect();
        let h = x.matmul(&p[0]).unwrap().add(&p[1]).unwrap().relu().unwrap();
        let loss = h
            .matmul(&p[2])
            .unwrap()
            .add(&p[3])
            .unwrap()
            .mse_loss(&y, Reduction::Mean)
            .unwrap();
        let grads = loss.backward().unwrap();
        let l = loss.to_scalar::<f32>().unwrap();
        drop((p, h, loss));
        for v in &params {
            let g = grads.get(v).unwrap().to_vec::<f32>().unwrap();
            v.update(|w: &mut [f32]| w.iter_mut().zip(&g).for_each(|(w, g)| *w -= 0.05 * g))
                .unwrap();
        }
        l
    };
    let first = step(0);
    for i in 1..1_000 {
        step(i);
    }
    let warm = resident_kib();
    let mut last = 0.0;
    for i in 1_000..10_000 {
        last = step(i);
    }
    let end = resident_kib();
    assert!(
        last < first * 0.5,
        "the loop trains: loss {first} -> {last}"
    );
    // One leaked graph per step would be ~20 KiB x 9,000 steps; allow 1 MiB of allocator noise.
    assert!(
        end <= warm + 1024,
        "resident memory grew from {warm} KiB to {end} KiB over 9,000 steps"
    );
}
