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
    let e = Recurrent::gru(3, 4)
        .forget_bias(1.0)
        .build(&mut Rng::seed(0));
    assert!(e.err().unwrap().to_string().contains("LSTM only"));
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
