//! The digits example reaches the bar: at least 97% test accuracy on the documented split
//! (the data README's sklearn MLP(64) gets 0.9794 ± 0.0028), for every seed tried.

#[path = "../examples/digits.rs"]
mod digits;

#[test]
fn digits_mlp_reaches_97_percent_on_the_test_split() {
    let mut accs = Vec::new();
    for seed in 0..3 {
        let outcome = digits::run(128, 100, seed, false).unwrap();
        let h = &outcome.history;
        // Training worked as a loop should: the validation loss of the best epoch is well below
        // that of the first.
        let first = h.epochs[0].valid.as_ref().unwrap()["loss"];
        let best = h.epochs[h.best_epoch.unwrap()].valid.as_ref().unwrap()["loss"];
        assert!(best < 0.5 * first, "valid loss {first} -> {best}");
        accs.push(outcome.test["accuracy"]);
    }
    assert!(accs.iter().all(|&a| a >= 0.97), "test accuracies {accs:?}");
}
