use nabla_core::{DType, Rng, Tensor, Var};
use std::time::Instant;
fn main() {
    let mut rng = Rng::seed(0);
    let a = Tensor::randn([128, 256], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let b = Tensor::randn([128, 256], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let bias = Tensor::randn([256], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let va = Var::new(&a).unwrap();
    let vbias = Var::new(&bias).unwrap();
    let t = |name: &str, f: &dyn Fn()| {
        for _ in 0..50 { f(); }
        let t0 = Instant::now();
        for _ in 0..1000 { f(); }
        println!("{name:30} {:7.2} us", t0.elapsed().as_secs_f64() / 1000.0 * 1e6);
    };
    t("add", &|| { std::hint::black_box(a.add(&b).unwrap()); });
    t("mul", &|| { std::hint::black_box(a.mul(&b).unwrap()); });
    t("div", &|| { std::hint::black_box(a.div(&b).unwrap()); });
    t("add bias [256]", &|| { std::hint::black_box(a.add(&bias).unwrap()); });
    t("mul_scalar", &|| { std::hint::black_box(a.mul_scalar(0.5).unwrap()); });
    t("sum_all", &|| { std::hint::black_box(a.sum_all().unwrap()); });
    t("sum dim0", &|| { std::hint::black_box(a.sum_dims(&[0], false).unwrap()); });
    t("fwd+bwd (a*b).sum", &|| { std::hint::black_box(va.as_tensor().mul(&b).unwrap().sum_all().unwrap().backward().unwrap()); });
    t("fwd+bwd (a+bias).sum", &|| { std::hint::black_box(va.as_tensor().add(&vbias.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap()); });
}
