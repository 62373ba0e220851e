//! The fused recurrence op (RNN, LSTM, GRU over a whole sequence, backpropagation through time):
//! gradients against finite differences, values and gradients against the same cells written
//! step by step with primitive ops, and padding masks.

mod common;
use common::{check, input, on_threads, vjp};
use nabla_core::{RecurrentCell, Result, Tensor, Var};

const B: usize = 3;
const T: usize = 4;
const H: usize = 3;

const CELLS: [RecurrentCell; 4] = [
    RecurrentCell::RnnTanh,
    RecurrentCell::RnnRelu,
    RecurrentCell::Lstm,
    RecurrentCell::Gru,
];

/// Finite differences for every input of every cell, with an initial state and with padding.
#[test]
fn gradients_match_finite_differences() {
    let mask: Vec<bool> = (0..B * T).map(|i| !(i == 3 || i == 7 || i == 6)).collect();
    for cell in CELLS {
        let g = cell.gates();
        let mut inputs = vec![
            input(&[B, T, g * H], 1, true),
            input(&[g * H, H], 2, true).mul_scalar(0.5).unwrap(),
            input(&[g * H], 3, true),
            input(&[B, H], 4, true),
        ];
        if cell.has_cell_state() {
            inputs.push(input(&[B, H], 5, true));
        }
        for masked in [false, true] {
            let m = masked.then_some(&mask[..]);
            check(
                &format!("{} (masked: {masked})", cell.name()),
                inputs.clone(),
                |x| {
                    let (hs, _) =
                        x[0].recurrence(cell, &x[1], Some(&x[2]), Some(&x[3]), x.get(4), m)?;
                    Ok(hs)
                },
            );
        }
    }
}

/// The same recurrence written with primitive ops, one step at a time (PyTorch's equations).
fn reference(
    cell: RecurrentCell,
    gx: &Tensor,
    w: &Tensor,
    b: &Tensor,
    h0: &Tensor,
    c0: Option<&Tensor>,
) -> Result<Tensor> {
    let mut h = h0.clone();
    let mut c = c0.cloned();
    let mut outs = Vec::new();
    for t in 0..T {
        let x = gx.narrow(1, t, 1)?.squeeze(1)?;
        let hh = h.matmul(&w.t()?)?.add(b)?;
        let part = |m: &Tensor, k: usize| m.narrow(1, k * H, H);
        h = match cell {
            RecurrentCell::RnnTanh => x.add(&hh)?.tanh()?,
            RecurrentCell::RnnRelu => x.add(&hh)?.relu()?,
            RecurrentCell::Lstm => {
                let a = x.add(&hh)?;
                let i = part(&a, 0)?.sigmoid()?;
                let f = part(&a, 1)?.sigmoid()?;
                let g = part(&a, 2)?.tanh()?;
                let o = part(&a, 3)?.sigmoid()?;
                let c_new = f.mul(c.as_ref().unwrap())?.add(&i.mul(&g)?)?;
                let h_new = o.mul(&c_new.tanh()?)?;
                c = Some(c_new);
                h_new
            }
            RecurrentCell::Gru => {
                let r = part(&x, 0)?.add(&part(&hh, 0)?)?.sigmoid()?;
                let z = part(&x, 1)?.add(&part(&hh, 1)?)?.sigmoid()?;
                let n = part(&x, 2)?.add(&r.mul(&part(&hh, 2)?)?)?.tanh()?;
                z.neg()?.add_scalar(1.0)?.mul(&n)?.add(&z.mul(&h)?)?
            }
        };
        outs.push(h.clone());
    }
    Tensor::stack(&outs.iter().collect::<Vec<_>>(), 1)
}

#[test]
fn values_and_gradients_match_the_step_by_step_cells() {
    for cell in CELLS {
        let g = cell.gates();
        let vars: Vec<Var> = [
            input(&[B, T, g * H], 11, true),
            input(&[g * H, H], 12, true),
            input(&[g * H], 13, true),
            input(&[B, H], 14, true),
            input(&[B, H], 15, true),
        ]
        .iter()
        .map(|t| Var::new(t).unwrap())
        .collect();
        let x: Vec<Tensor> = vars.iter().map(Var::as_tensor).collect();
        let c0 = cell.has_cell_state().then_some(&x[4]);
        let (fused, _) = x[0]
            .recurrence(cell, &x[1], Some(&x[2]), Some(&x[3]), c0, None)
            .unwrap();
        let stepwise = reference(cell, &x[0], &x[1], &x[2], &x[3], c0).unwrap();
        let (a, b) = (fused.to_vec_f64(), stepwise.to_vec_f64());
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-12, "{}: {u} vs {v}", cell.name());
        }
        let cot = input(&[B, T, H], 16, false);
        let gf = vjp(&fused, &cot);
        let gs = vjp(&stepwise, &cot);
        let used = if cell.has_cell_state() { 5 } else { 4 };
        for (k, v) in vars.iter().enumerate().take(used) {
            let (u, w) = (gf.get(v).unwrap(), gs.get(v).unwrap());
            for (p, q) in u.to_vec_f64().iter().zip(w.to_vec_f64()) {
                assert!(
                    (p - q).abs() < 1e-10,
                    "{}: gradient of input {k}: {p} vs {q}",
                    cell.name()
                );
            }
        }
    }
}

/// A sequence padded at the end ends in the same state as the sequence alone, and its padding
/// gets no gradient.
#[test]
fn padded_steps_pass_the_state_through() {
    for cell in [
        RecurrentCell::Lstm,
        RecurrentCell::Gru,
        RecurrentCell::RnnTanh,
    ] {
        let g = cell.gates();
        let gx = Var::new(&input(&[1, T, g * H], 21, true)).unwrap();
        let w = input(&[g * H, H], 22, true);
        let short = gx.as_tensor().narrow(1, 0, 2).unwrap();
        let (alone, _) = short.recurrence(cell, &w, None, None, None, None).unwrap();
        let mask = [true, true, false, false];
        let (padded, _) = gx
            .as_tensor()
            .recurrence(cell, &w, None, None, None, Some(&mask))
            .unwrap();
        let last_alone = alone.narrow(1, 1, 1).unwrap().to_vec_f64();
        let last_padded = padded.narrow(1, T - 1, 1).unwrap();
        assert_eq!(last_alone, last_padded.to_vec_f64(), "{}", cell.name());
        let grads = last_padded.sum_all().unwrap().backward().unwrap();
        let dgx = grads.get(&gx).unwrap().to_vec_f64();
        let per_step = g * H;
        assert!(dgx[..2 * per_step].iter().any(|&v| v != 0.0));
        assert!(
            dgx[2 * per_step..].iter().all(|&v| v == 0.0),
            "{}: padding got a gradient",
            cell.name()
        );
    }
}

/// The returned final state continues the sequence: the steps after a split, started from the
/// first part's last hidden state and (LSTM) cell state, equal the same steps of one call,
/// padding included (a padded last step passes the state through).
#[test]
fn the_final_state_continues_the_sequence() {
    let mask: Vec<bool> = (0..B * T).map(|i| i != 1 && i != 7).collect();
    for cell in CELLS {
        let g = cell.gates();
        let gx = input(&[B, T, g * H], 31, false);
        let w = input(&[g * H, H], 32, false).mul_scalar(0.5).unwrap();
        let (whole, last_cell) = gx
            .recurrence(cell, &w, None, None, None, Some(&mask))
            .unwrap();
        assert_eq!(
            last_cell.is_some(),
            cell.has_cell_state(),
            "{}",
            cell.name()
        );
        let split = 2;
        let part_mask = |from: usize, len: usize| -> Vec<bool> {
            (0..B)
                .flat_map(|n| mask[n * T + from..][..len].to_vec())
                .collect()
        };
        let (first, c) = gx
            .narrow(1, 0, split)
            .unwrap()
            .recurrence(cell, &w, None, None, None, Some(&part_mask(0, split)))
            .unwrap();
        let h = first
            .narrow(1, split - 1, 1)
            .unwrap()
            .reshape([B, H])
            .unwrap();
        let (rest, c_end) = gx
            .narrow(1, split, T - split)
            .unwrap()
            .recurrence(
                cell,
                &w,
                None,
                Some(&h),
                c.as_ref(),
                Some(&part_mask(split, T - split)),
            )
            .unwrap();
        let want = whole.narrow(1, split, T - split).unwrap().to_vec_f64();
        for (u, v) in rest.to_vec_f64().iter().zip(&want) {
            assert!((u - v).abs() < 1e-12, "{}: {u} vs {v}", cell.name());
        }
        if let (Some(a), Some(b)) = (c_end, last_cell) {
            assert_eq!(a.to_vec_f64(), b.to_vec_f64());
        }
    }
}

#[test]
fn bad_shapes_are_errors_that_name_them() {
    let gx = input(&[2, 5, 8], 1, false);
    let msg = |r: Result<(Tensor, Option<Tensor>)>| r.unwrap_err().to_string();
    let e = msg(gx.recurrence(
        RecurrentCell::Lstm,
        &input(&[8, 3], 2, false),
        None,
        None,
        None,
        None,
    ));
    assert!(
        e.contains("lstm") && e.contains("[8, 3]") && e.contains("4 * hidden"),
        "{e}"
    );
    let w = input(&[8, 2], 2, false);
    let e = msg(gx.recurrence(
        RecurrentCell::Lstm,
        &w,
        None,
        Some(&input(&[3, 2], 3, false)),
        None,
        None,
    ));
    assert!(e.contains("[3, 2]") && e.contains("[2, 2]"), "{e}");
    let e = msg(gx.recurrence(RecurrentCell::Lstm, &w, None, None, None, Some(&[true; 3])));
    assert!(e.contains("3 flags") && e.contains("10"), "{e}");
    let e = msg(input(&[2, 5, 6], 1, false).recurrence(
        RecurrentCell::Gru,
        &input(&[6, 2], 2, false),
        None,
        None,
        Some(&input(&[2, 2], 3, false)),
        None,
    ));
    assert!(e.contains("only the LSTM"), "{e}");
    let e = msg(input(&[2, 8], 1, false).recurrence(
        RecurrentCell::RnnTanh,
        &input(&[8, 8], 2, false),
        None,
        None,
        None,
        None,
    ));
    assert!(e.contains("3-D"), "{e}");
}

/// A recurrence large enough to run as groups of whole sequences, one group per thread, gives
/// the values and gradients of the one-thread run: for every cell, with initial states,
/// padding, and a batch that does not divide evenly (33 sequences: 17 + 16 on two threads,
/// 11 + 11 + 11 on three).
#[test]
fn sequence_groups_on_several_threads_equal_one_thread() {
    let (batch, steps, hidden) = (33, 3, 512);
    let mask: Vec<bool> = (0..batch * steps).map(|i| i % 7 != 5).collect();
    for cell in CELLS {
        let g = cell.gates();
        let vars: Vec<Var> = [
            input(&[batch, steps, g * hidden], 21, false),
            input(&[g * hidden, hidden], 22, false)
                .mul_scalar(1.0 / 32.0)
                .unwrap(),
            input(&[g * hidden], 23, false),
            input(&[batch, hidden], 24, false),
            input(&[batch, hidden], 25, false),
        ]
        .iter()
        .map(|t| Var::new(t).unwrap())
        .collect();
        let used = if cell.has_cell_state() { 5 } else { 4 };
        let cot = input(&[batch, steps, hidden], 26, false);
        let run = |threads: usize| -> Vec<Vec<f64>> {
            on_threads(threads, || {
                let x: Vec<Tensor> = vars.iter().map(Var::as_tensor).collect();
                let c0 = cell.has_cell_state().then_some(&x[4]);
                let (hs, _) = x[0]
                    .recurrence(cell, &x[1], Some(&x[2]), Some(&x[3]), c0, Some(&mask))
                    .unwrap();
                let grads = vjp(&hs, &cot);
                let mut out = vec![hs.to_vec_f64()];
                out.extend(
                    vars[..used]
                        .iter()
                        .map(|v| grads.get(v).unwrap().to_vec_f64()),
                );
                out
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            for (k, (got, want)) in run(threads).iter().zip(&one).enumerate() {
                let worst = got
                    .iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                    .fold(0.0, f64::max);
                // 0: the hidden states; then the gradient of each input.
                assert!(
                    worst < 1e-12,
                    "{} on {threads} threads, output {k}: {worst:e}",
                    cell.name()
                );
            }
        }
    }
}
