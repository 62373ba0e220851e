//! RNN, LSTM and GRU layers against PyTorch (`tests/torch/recurrent_cases.json`, made by
//! `recurrent_cases.py` beside it with torch.nn.{RNN,LSTM,GRU} in float64): the same weights give
//! the same outputs and the same gradients for the input and every parameter. Then the layer's
//! own options: the last step, padding masks, stacking, Embedding.

mod common;
use common::{close_to_torch as close, floats, tensor, vjp};
use nabla_core::{DType, RecurrentCell, Rng, Tensor, Var};
use nabla_nn::layers::{Embedding, Recurrent, SequenceOutput};
use nabla_nn::{Ctx, Module, ModuleExt};
use serde_json::Value;

#[test]
fn outputs_and_gradients_match_pytorch() {
    let text = include_str!("torch/recurrent_cases.json");
    let file: Value = serde_json::from_str(text).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let cell = match case["cell"].as_str().unwrap() {
            "rnn_tanh" => RecurrentCell::RnnTanh,
            "rnn_relu" => RecurrentCell::RnnRelu,
            "lstm" => RecurrentCell::Lstm,
            "gru" => RecurrentCell::Gru,
            other => panic!("unknown cell {other}"),
        };
        let name = format!("{} x{}", cell.name(), case["layers"]);
        let layer = Recurrent::builder(
            cell,
            case["input_size"].as_u64().unwrap() as usize,
            case["hidden_size"].as_u64().unwrap() as usize,
        )
        .layers(case["layers"].as_u64().unwrap() as usize)
        .dtype(DType::F64)
        .build(&mut Rng::seed(0))
        .unwrap();
        let params = layer.named_parameters();
        let torch_params = case["params"].as_object().unwrap();
        assert_eq!(params.len(), torch_params.len(), "{name}: parameter count");
        for (n, var) in &params {
            let p = torch_params
                .get(n)
                .unwrap_or_else(|| panic!("{name}: PyTorch has no parameter {n}"));
            var.set(&tensor(p)).unwrap();
        }
        let x = Var::new(&tensor(&case["x"])).unwrap();
        let out = layer
            .forward(&x.as_tensor(), &mut Ctx::train(Rng::seed(0)))
            .unwrap();
        close(
            &format!("{name} output"),
            &out.to_vec_f64(),
            &floats(&case["output"]["data"]),
        );
        let cot = Tensor::from_vec(floats(&case["cotangent"]), out.dims().to_vec()).unwrap();
        let grads = vjp(&out, &cot);
        close(
            &format!("{name} d/dx"),
            &grads.get(&x).unwrap().to_vec_f64(),
            &floats(&case["grads"]["x"]),
        );
        for (n, var) in &params {
            close(
                &format!("{name} d/d{n}"),
                &grads.get(var).unwrap().to_vec_f64(),
                &floats(&case["grads"][n]),
            );
        }
    }
}

fn lstm(output: SequenceOutput) -> Recurrent {
    Recurrent::lstm(3, 4)
        .layers(2)
        .output(output)
        .mask_value(0.0)
        .dtype(DType::F64)
        .build(&mut Rng::seed(7))
        .unwrap()
}

/// Variable-length sequences padded with the mask value classify exactly as each sequence alone.
#[test]
fn padded_sequences_give_the_same_last_state_as_alone() {
    let model = lstm(SequenceOutput::Last);
    let long = common::input(&[1, 6, 3], 1);
    let short = common::input(&[1, 4, 3], 2);
    let padded_short = Tensor::concat(&[&short, &Tensor::zeros([1, 2, 3], DType::F64)], 1).unwrap();
    let batch = Tensor::concat(&[&long, &padded_short], 0).unwrap();
    let together = model.predict(&batch).unwrap();
    assert_eq!(together.dims(), [2, 4]);
    let alone_long = model.predict(&long).unwrap().to_vec_f64();
    let alone_short = model.predict(&short).unwrap().to_vec_f64();
    let t = together.to_vec_f64();
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(close(&t[..4], &alone_long));
    assert!(close(&t[4..], &alone_short));
    // Without the mask the padding would change the short sequence's state.
    let unmasked = Recurrent::lstm(3, 4)
        .layers(2)
        .output(SequenceOutput::Last)
        .dtype(DType::F64)
        .build(&mut Rng::seed(7))
        .unwrap();
    let t = unmasked.predict(&batch).unwrap().to_vec_f64();
    assert!(!close(
        &t[4..],
        &unmasked.predict(&short).unwrap().to_vec_f64()
    ));
}

#[test]
fn all_steps_and_the_last_agree() {
    let x = common::input(&[2, 5, 3], 3);
    let all = lstm(SequenceOutput::All).predict(&x).unwrap();
    let last = lstm(SequenceOutput::Last).predict(&x).unwrap();
    assert_eq!(all.dims(), [2, 5, 4]);
    let tail = all.narrow(1, 4, 1).unwrap().squeeze(1).unwrap();
    assert_eq!(tail.to_vec_f64(), last.to_vec_f64());
}

/// `x` fed in chunks of `sizes` steps through one state-carrying context, the outputs joined.
fn in_chunks(model: &dyn Module, x: &Tensor, sizes: &[usize], ctx: &mut Ctx) -> Tensor {
    let mut at = 0;
    let parts: Vec<Tensor> = sizes
        .iter()
        .map(|&n| {
            let y = model.forward(&x.narrow(1, at, n).unwrap(), ctx).unwrap();
            at += n;
            y
        })
        .collect();
    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 1).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    a.to_vec_f64()
        .iter()
        .zip(b.to_vec_f64())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// A sequence fed a few steps at a time, the state carried between passes, gives every step's
/// output as one pass over the whole sequence: each cell, two stacked layers, padding included.
#[test]
fn carried_state_continues_a_sequence_across_passes() {
    for cell in [
        RecurrentCell::Lstm,
        RecurrentCell::Gru,
        RecurrentCell::RnnTanh,
    ] {
        let model = Recurrent::builder(cell, 3, 4)
            .layers(2)
            .output(SequenceOutput::All)
            .mask_value(0.0)
            .dtype(DType::F64)
            .build(&mut Rng::seed(5))
            .unwrap();
        assert!(model.runs_step_by_step());
        // The second sequence ends after 6 steps: padding, which the state passes through.
        let x = common::input(&[2, 9, 3], 4);
        let keep = Tensor::from_vec(
            (0..18)
                .map(|i| f64::from(i < 9 || i % 9 < 6))
                .collect::<Vec<_>>(),
            [2, 9, 1],
        )
        .unwrap();
        let x = x.mul(&keep).unwrap();
        let whole = model.predict(&x).unwrap();
        let mut ctx = Ctx::eval().carrying_state();
        let chunked = in_chunks(&model, &x, &[4, 1, 4], &mut ctx);
        assert!(max_diff(&whole, &chunked) < 1e-12, "{cell:?}");
        // Without the carried state each chunk starts from zero: a different sequence.
        let fresh = in_chunks(&model, &x, &[4, 1, 4], &mut Ctx::eval());
        assert!(max_diff(&whole, &fresh) > 1e-3, "{cell:?}");
        // reset_state forgets it: the next pass is a fresh start.
        ctx.reset_state();
        let again = model.forward(&x, &mut ctx).unwrap();
        assert!(max_diff(&whole, &again) < 1e-12, "{cell:?}");
    }
}

/// Inside a model the state is kept per layer: an embedding, an LSTM and a per-step linear
/// layer fed one character at a time give the whole pass's logits at every step.
#[test]
fn a_character_model_runs_one_step_at_a_time() {
    let mut rng = Rng::seed(2);
    let model = nabla_nn::layers::Sequential::new()
        .with(Embedding::with_init(6, 3, nabla_nn::Init::HE, DType::F64, &mut rng).unwrap())
        .with(
            Recurrent::lstm(3, 5)
                .dtype(DType::F64)
                .output(SequenceOutput::All)
                .build(&mut rng)
                .unwrap(),
        )
        .with(
            nabla_nn::layers::Linear::builder(5, 6)
                .dtype(DType::F64)
                .build(&mut rng)
                .unwrap(),
        );
    assert!(model.runs_step_by_step());
    let ids = Tensor::from_vec(vec![1.0, 4.0, 0.0, 5.0, 2.0, 2.0, 3.0], [1, 7]).unwrap();
    let whole = model.predict(&ids).unwrap();
    let mut ctx = Ctx::eval().carrying_state();
    let stepped = in_chunks(&model, &ids, &[1; 7], &mut ctx);
    assert!(max_diff(&whole, &stepped) < 1e-12);
}

#[test]
fn a_carried_state_for_other_sequences_is_an_error() {
    let model = lstm(SequenceOutput::Last);
    let mut ctx = Ctx::eval().carrying_state();
    model
        .forward(&common::input(&[2, 3, 3], 1), &mut ctx)
        .unwrap();
    let err = model
        .forward(&common::input(&[3, 3, 3], 1), &mut ctx)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch of 2") && err.contains("3 sequences") && err.contains("reset_state"),
        "{err}"
    );
    // The failed pass left the state as it was: the right batch continues from it.
    let next = common::input(&[2, 3, 3], 2);
    let continued = model.forward(&next, &mut ctx).unwrap();
    let whole = model
        .predict(&Tensor::concat(&[&common::input(&[2, 3, 3], 1), &next], 1).unwrap())
        .unwrap();
    assert!(max_diff(&whole, &continued) < 1e-12);
    // A state that does not fit the layer (another model's) is named as such.
    let mut ctx = Ctx::eval().carrying_state();
    let gru = Recurrent::gru(3, 4)
        .dtype(DType::F64)
        .build(&mut Rng::seed(1))
        .unwrap();
    gru.forward(&common::input(&[2, 3, 3], 1), &mut ctx)
        .unwrap();
    let err = model
        .forward(&common::input(&[2, 3, 3], 1), &mut ctx)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another model"), "{err}");
}

/// Which layers may run a sequence step by step: those that act on each step alone.
#[test]
fn layers_that_mix_steps_do_not_run_step_by_step() {
    use nabla_nn::layers::{Conv2d, Linear, LogSoftmax, PRelu, Reshape, Sequential, Softmax};
    let mut rng = Rng::seed(0);
    assert!(Softmax::default().runs_step_by_step());
    assert!(!Softmax::new(1).runs_step_by_step());
    assert!(!LogSoftmax::new(1).runs_step_by_step());
    assert!(PRelu::new(1, 0.25, DType::F32).unwrap().runs_step_by_step());
    assert!(!PRelu::new(4, 0.25, DType::F32).unwrap().runs_step_by_step());
    assert!(!Reshape { shape: vec![4] }.runs_step_by_step());
    let conv = Conv2d::builder(1, 2, [3, 3]).build(&mut rng).unwrap();
    assert!(!conv.runs_step_by_step());
    let per_step = Sequential::new()
        .with(Linear::new(4, 4, &mut rng).unwrap())
        .with(nabla_nn::layers::Relu);
    assert!(per_step.runs_step_by_step());
    assert!(
        !per_step
            .with(Reshape { shape: vec![4] })
            .runs_step_by_step()
    );
}

#[test]
fn parameters_are_named_and_initialized_like_pytorch() {
    let model = Recurrent::gru(5, 8)
        .layers(2)
        .build(&mut Rng::seed(1))
        .unwrap();
    let names: Vec<(String, Vec<usize>)> = model
        .named_parameters()
        .into_iter()
        .map(|(n, v)| (n, v.shape().dims().to_vec()))
        .collect();
    assert_eq!(names[0], ("weight_ih_l0".to_string(), vec![24, 5]));
    assert_eq!(names[1], ("weight_hh_l0".to_string(), vec![24, 8]));
    assert_eq!(names[4], ("weight_ih_l1".to_string(), vec![24, 8]));
    assert_eq!(names.len(), 8);
    let bound = 1.0 / 8f64.sqrt();
    for (_, v) in model.named_parameters() {
        let values = v.as_tensor().to_vec_f64();
        assert!(values.iter().all(|x| x.abs() <= bound));
        assert!(values.iter().any(|x| x.abs() > bound / 2.0));
    }
    let with_forget = Recurrent::lstm(2, 3)
        .forget_bias(1.0)
        .build(&mut Rng::seed(1))
        .unwrap();
    let b_ih = with_forget.named_parameters()[2].1.as_tensor().to_vec_f64();
    assert_eq!(&b_ih[3..6], &[1.0, 1.0, 1.0]);
    assert!(b_ih[..3].iter().all(|&b| b != 1.0));
    // A GRU's [r, z, n]: the update gate z keeps σ(b) of the state per step.
    let with_update = Recurrent::gru(2, 3)
        .forget_bias(2.0)
        .build(&mut Rng::seed(1))
        .unwrap();
    let b_ih = with_update.named_parameters()[2].1.as_tensor().to_vec_f64();
    assert_eq!(&b_ih[3..6], &[2.0, 2.0, 2.0]);
    assert!(b_ih[..3].iter().chain(&b_ih[6..]).all(|&b| b != 2.0));
}

#[test]
fn bad_input_and_options_are_errors() {
    let model = lstm(SequenceOutput::Last);
    let e = model
        .forward(&common::input(&[2, 12], 1), &mut Ctx::eval())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[batch, time, 3]") && e.contains("[2, 12]"),
        "{e}"
    );
    let e = Recurrent::rnn(3, 4)
        .forget_bias(1.0)
        .build(&mut Rng::seed(0));
    assert!(
        e.err()
            .unwrap()
            .to_string()
            .contains("the LSTM's forget gate and the GRU's update gate only")
    );
    let e = Recurrent::rnn(3, 0).build(&mut Rng::seed(0));
    assert!(e.err().unwrap().to_string().contains("positive"));
    let e = Recurrent::rnn(3, 2).dropout(1.0).build(&mut Rng::seed(0));
    assert!(e.err().unwrap().to_string().contains("dropout"));
}

#[test]
fn embedding_looks_up_rows_and_sums_their_gradients() {
    let emb = Embedding::with_init(
        5,
        3,
        nabla_nn::Init::Normal {
            mean: 0.0,
            std: 1.0,
        },
        DType::F64,
        &mut Rng::seed(2),
    )
    .unwrap();
    let ids = Tensor::from_vec(vec![1.0f64, 4.0, 1.0, 0.0], [2, 2]).unwrap();
    let out = emb.forward(&ids, &mut Ctx::eval()).unwrap();
    assert_eq!(out.dims(), [2, 2, 3]);
    let table = emb.weight().as_tensor().to_vec_f64();
    assert_eq!(&out.to_vec_f64()[..3], &table[3..6]);
    let grads = out.sum_all().unwrap().backward().unwrap();
    let g = grads.get(emb.weight()).unwrap().to_vec_f64();
    assert_eq!(
        g,
        vec![
            1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0
        ]
    );
    for bad in [5.0, -1.0, 1.5, f64::NAN] {
        let ids = Tensor::from_vec(vec![0.0f64, bad], [2]).unwrap();
        let e = emb.forward(&ids, &mut Ctx::eval()).unwrap_err().to_string();
        assert!(e.contains("element 1") && e.contains("0..5"), "{e}");
    }
}
