//! Character-level language models from a config (`data.text`): a text file's characters
//! become class ids (the vocabulary of the training text), windows of `context` ids are the
//! inputs and the same ids one step later the targets, the metrics include bits per character
//! (`log_loss / ln 2`), and a trained model writes new text one character at a time.

use crate::config::Located;
use crate::config::build::{OutputSpec, build_loss};
use crate::error::{Error, Result};
use crate::experiment::{PreparedData, Preprocessing, Splits};
use crate::metrics::{MetricAccumulator, OutputKind};
use nabla_core::{Rng, Tensor, with_no_grad};
use nabla_data::csv::{CsvSchema, Missing, Task};
use nabla_data::{Dataset, Preprocessor, Scaling, TextSpec, Vocabulary};
use nabla_nn::{Ctx, Module};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a character model's run keeps of its data: the windows' length and the characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextModel {
    pub spec: TextSpec,
    pub vocabulary: Vocabulary,
}

impl TextModel {
    /// The examples of a text file, encoded with this vocabulary (a character it lacks is an
    /// error naming its line and column).
    pub fn dataset(&self, path: &Path) -> Result<Dataset> {
        Ok(self
            .spec
            .dataset(&self.ids(path)?, &path.display().to_string())?)
    }

    /// The characters of a text file as class ids of this vocabulary.
    pub fn ids(&self, path: &Path) -> Result<Vec<usize>> {
        let text = nabla_data::read_text(path)?;
        Ok(self.vocabulary.encode(&text, path)?)
    }

    /// What the model's output must be per example: a class per character at every step.
    pub fn output(&self) -> OutputSpec {
        OutputSpec::StepClasses {
            steps: self.spec.context,
            classes: self.vocabulary.len(),
        }
    }
}

/// Reads and splits a config's text: the training file's characters are the vocabulary; the
/// validation text is the last `valid_split` of it (before the last `test_split`, the test
/// text when there is no `data.test` file). Each part is windowed on its own.
pub(crate) fn prepare_text(l: &Located, spec: &TextSpec) -> Result<PreparedData> {
    check_text_spec(l)?;
    let data = &l.config.data;
    let text = nabla_data::read_text(&data.train)?;
    let vocabulary = Vocabulary::of(&text);
    let ids = vocabulary.encode(&text, &data.train)?;
    let test_fraction = if data.test.is_some() {
        0.0
    } else {
        data.test_split
    };
    let [train, valid, test] = spec
        .split(ids.len(), data.valid_split, test_fraction)
        .map_err(|e| Error::Config(l.error("data.valid_split", e.to_string())))?;
    let model = TextModel {
        spec: spec.clone(),
        vocabulary,
    };
    let file = data.train.display().to_string();
    // At least 1: `prepare_fold` checked it first.
    let streams = l.config.train.batch_size;
    // Windows, or with carried state one stream per batch row.
    let windows = |ids: &[usize], what: &str, key: &str| -> Result<Dataset> {
        let dataset = if spec.carry_state {
            spec.stream_dataset(ids, streams, what)
        } else {
            spec.dataset(ids, what)
        };
        dataset.map_err(|e| Error::Config(l.error(key, e.to_string())))
    };
    let part = |range: std::ops::Range<usize>, what: &str, key: &str| -> Result<Option<Dataset>> {
        if range.is_empty() {
            return Ok(None);
        }
        windows(&ids[range], &format!("the {what} part of {file}"), key).map(Some)
    };
    let splits = Splits {
        train: part(train, "training", "data.text.context")?
            .ok_or_else(|| Error::Config(l.error("data.valid_split", "leaves no training text")))?,
        valid: part(valid, "validation", "data.valid_split")?,
        test: match &data.test {
            Some(path) => Some(windows(
                &model.ids(path)?,
                &path.display().to_string(),
                "data.test",
            )?),
            None => part(test, "test", "data.test_split")?,
        },
    };
    let output = model.output();
    let loss = build_loss(l.config.loss.as_ref(), output)
        .map_err(|(key, message)| Error::Config(l.error(&key, message)))?;
    let context = spec.context;
    // The ids go to the model as they are: an embedding reads them.
    let preprocessor = Preprocessor::fit(&vec![0.0; context], context, None, Scaling::None)?;
    let preprocessing = Preprocessing {
        schema: CsvSchema {
            features: Vec::new(),
            target: "next character".into(),
            task: Task::Classification,
            classes: model.vocabulary.names(),
            missing: Missing::Error,
        },
        preprocessor,
        target_scale: None,
        binary_target: false,
        sequence: None,
        reconstruct: false,
        series: None,
        text: Some(model),
        image: None,
        class_counts: Vec::new(),
    };
    Ok(PreparedData {
        preprocessing,
        splits,
        output,
        loss,
    })
}

/// A character model reads class ids: its first layer must be an embedding with a row for
/// every character of the training text.
pub(crate) fn check_model(l: &Located, text: &TextModel) -> Result<()> {
    let characters = text.vocabulary.len();
    match l.config.model.layers.first() {
        Some(crate::config::LayerSpec::Embedding { vocab, .. }) if *vocab < characters => {
            Err(Error::Config(l.error(
                "model.layers[0].vocab",
                format!(
                    "the training text has {characters} distinct characters (ids 0..{characters}) \
                     but the table has {vocab} rows: set vocab = {characters}"
                ),
            )))
        }
        Some(crate::config::LayerSpec::Embedding { .. }) => Ok(()),
        _ => Err(Error::Config(l.error(
            "model.layers[0]",
            format!(
                "a character model's inputs are class ids, not measurements: start with \
                 {{ type = \"embedding\", vocab = {characters}, dim = 32 }}"
            ),
        ))),
    }
}

/// A text is read as characters: the options that choose columns, scale values or shape rows
/// do not apply.
fn check_text_spec(l: &Located) -> Result<()> {
    let data = &l.config.data;
    let other = [
        ("data.target", data.target.is_some()),
        ("data.features", data.features.is_some()),
        ("data.categorical", !data.categorical.is_empty()),
        ("data.impute", data.impute.is_some()),
        ("data.task", data.task.is_some()),
        ("data.train_labels", data.train_labels.is_some()),
        ("data.test_labels", data.test_labels.is_some()),
        ("data.scaling", data.scaling != Scaling::None),
        ("data.scale_target", data.scale_target),
        ("data.sequence", data.sequence.is_some()),
        ("data.series", data.series.is_some()),
        ("data.reconstruct", data.reconstruct),
    ];
    l.refuse_set(
        &other,
        "does not apply with data.text: a text's examples are its characters (class ids for an \
         embedding), each predicting the next",
    )?;
    if data.text.as_ref().is_some_and(|t| t.context == 0) {
        return Err(Error::Config(l.error(
            "data.text.context",
            "must be at least 1 (characters per example)",
        )));
    }
    Ok(())
}

/// Writes `length` characters after `prompt`, each drawn from the model's distribution over
/// the next character at `temperature` (`p ∝ exp(logit / temperature)`; 0 takes the most
/// probable one). Returns the new characters only.
///
/// The model reads the prompt's last `context` characters (the window length it was trained
/// on) from a zero state. A model that runs step by step ([`Module::runs_step_by_step`]: a
/// recurrent network) then reads each new character once, carrying its state on: O(1) per
/// character. Any other model reads the last `context` characters again for each one.
pub fn generate(
    model: &dyn Module,
    text: &TextModel,
    prompt: &str,
    length: usize,
    temperature: f64,
    rng: &mut Rng,
) -> Result<String> {
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(Error::Invalid(format!(
            "the temperature must be finite and >= 0, got {temperature}"
        )));
    }
    let vocabulary = &text.vocabulary;
    let mut ids = vocabulary.encode(prompt, Path::new("the prompt"))?;
    if ids.is_empty() {
        return Err(Error::Invalid(
            "the prompt is empty: give the model at least one character to continue".into(),
        ));
    }
    if length == 0 {
        return Ok(String::new());
    }
    let start = ids.len();
    let context = text.spec.context;
    let stepwise = model.runs_step_by_step();
    // The next character's logits after the model read `steps` (a [1, steps] row of ids).
    let last_logits = |steps: &[usize], ctx: &mut Ctx| -> Result<Vec<f64>> {
        let x: Vec<f32> = steps.iter().map(|&k| k as f32).collect();
        let out = model.forward(&Tensor::from_vec(x, [1, steps.len()])?, ctx)?;
        Ok(out.narrow(1, steps.len() - 1, 1)?.to_vec_f64())
    };
    with_no_grad(|| -> Result<()> {
        let mut ctx = Ctx::eval().carrying_state();
        let mut logits = last_logits(&ids[start.saturating_sub(context)..], &mut ctx)?;
        for i in 0..length {
            ids.push(draw(&logits, temperature, rng));
            if i + 1 == length {
                break;
            }
            logits = if stepwise {
                last_logits(&ids[ids.len() - 1..], &mut ctx)?
            } else {
                last_logits(&ids[ids.len().saturating_sub(context)..], &mut Ctx::eval())?
            };
        }
        Ok(())
    })?;
    Ok(vocabulary.decode(&ids[start..]))
}

/// Streams [`carried_bits`] reads a text in: each starts from a zero state, so their number
/// is how many characters are predicted without context (64 of the KJV test's 0.95 M).
pub const CARRIED_STREAMS: usize = 64;

/// Bits per character of a text (its character `ids`) with the model's state carried from one
/// window to the next, for a model that runs step by step (`None` otherwise): the text is cut into
/// [`CARRIED_STREAMS`] contiguous stretches read side by side, `context` characters per pass,
/// so every character but a stretch's first is predicted from all that precede it in its
/// stretch. The windowed `bits_per_char` instead starts every window of `context` characters
/// from a zero state, as training does; the difference is what the state carries beyond a
/// window. The last `(characters − 1) mod streams` characters are not scored.
pub fn carried_bits(model: &dyn Module, text: &TextModel, ids: &[usize]) -> Result<Option<f64>> {
    if !model.runs_step_by_step() {
        return Ok(None);
    }
    carried_bits_of(model, ids, text.spec.context, CARRIED_STREAMS).map(Some)
}

/// [`carried_bits`] of the character ids `ids`, read as `streams` stretches `context` steps at a
/// time (fewer streams when the text is short).
fn carried_bits_of(
    model: &dyn Module,
    ids: &[usize],
    context: usize,
    streams: usize,
) -> Result<f64> {
    // Each stretch of `len + 1` characters gives `len` predictions.
    let predicted = ids.len().saturating_sub(1);
    let streams = streams.clamp(1, predicted.max(1));
    let len = predicted / streams;
    if context == 0 {
        return Err(Error::Invalid("the model's context is 0 characters".into()));
    }
    if len == 0 {
        return Err(Error::Invalid(format!(
            "{} characters are too few to predict one",
            ids.len()
        )));
    }
    // Scored as training's metrics score a batch: the next character of every step.
    let mut acc = MetricAccumulator::default();
    with_no_grad(|| -> Result<()> {
        let mut ctx = Ctx::eval().carrying_state();
        for start in (0..len).step_by(context) {
            let steps = context.min(len - start);
            // The window's characters, `shift` ahead, stream by stream.
            let window = |shift: usize| {
                (0..streams)
                    .flat_map(move |s| (0..steps).map(move |j| ids[s * len + start + j + shift]))
            };
            let x: Vec<f32> = window(0).map(|k| k as f32).collect();
            let next: Vec<i64> = window(1).map(|k| k as i64).collect();
            let out = model.forward(&Tensor::from_vec(x, [streams, steps])?, &mut ctx)?;
            let next = Tensor::from_vec(next, [streams, steps])?;
            acc.add(OutputKind::MultiClass, 0.0, &out, &next)
                .map_err(|e| Error::Invalid(format!("scoring the text: {e}")))?;
        }
        Ok(())
    })?;
    Ok(acc.finish(OutputKind::MultiClass)["bits_per_char"])
}

/// A class drawn from `softmax(logits / temperature)` (the most probable at temperature 0).
fn draw(logits: &[f64], temperature: f64, rng: &mut Rng) -> usize {
    let best =
        logits.iter().enumerate().fold(
            (0, f64::NEG_INFINITY),
            |b, (k, &v)| if v > b.1 { (k, v) } else { b },
        );
    if temperature == 0.0 {
        return best.0;
    }
    let weights: Vec<f64> = logits
        .iter()
        .map(|v| ((v - best.1) / temperature).exp())
        .collect();
    let mut u = rng.uniform() * weights.iter().sum::<f64>();
    for (k, w) in weights.iter().enumerate() {
        if u < *w {
            return k;
        }
        u -= w;
    }
    best.0
}

/// Characters the report's sample writes, and at which temperature.
const REPORT_SAMPLE: (usize, f64) = (400, 0.8);

/// The report's text: the model continues the first window of `data` (the `split` text).
pub(crate) fn report_sample(
    model: &dyn Module,
    text: &TextModel,
    data: &Dataset,
    split: &str,
    seed: u64,
) -> Result<crate::report::Evaluation> {
    let first: Vec<usize> = data
        .x()
        .narrow(0, 0, 1)?
        .to_vec_f64()
        .iter()
        .map(|&k| k as usize)
        .collect();
    let prompt = text.vocabulary.decode(&first);
    let (length, temperature) = REPORT_SAMPLE;
    let generated = generate(
        model,
        text,
        &prompt,
        length,
        temperature,
        &mut Rng::seed(seed),
    )?;
    Ok(crate::report::Evaluation::Text(crate::report::TextSample {
        source: format!("the {split} text"),
        prompt,
        generated,
        temperature,
    }))
}

/// Text written by the character model of the run in `dir`: `length` characters after
/// `prompt` (default: a line break, the start of a line), drawn at `temperature` with `seed`.
/// Returns the prompt followed by the new text.
pub fn sample(
    dir: &Path,
    prompt: Option<&str>,
    length: usize,
    temperature: f64,
    seed: u64,
) -> Result<String> {
    let saved = crate::experiment::load_model(dir)?;
    let Some(text) = &saved.preprocessing.text else {
        return Err(Error::Checkpoint {
            path: dir.to_path_buf(),
            message: "is neither a GAN nor a character model (data.text): there is nothing to \
                      sample; use `nabla predict`"
                .into(),
        });
    };
    let prompt = match prompt {
        Some(p) => p.to_string(),
        None if text.vocabulary.id('\n').is_some() => "\n".into(),
        None => {
            return Err(Error::Invalid(
                "the training text has no line breaks to start from: give a --prompt".into(),
            ));
        }
    };
    let generated = generate(
        &saved.model,
        text,
        &prompt,
        length,
        temperature,
        &mut Rng::seed(seed),
    )?;
    Ok(prompt + &generated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::RecurrentCell;
    use nabla_nn::ModuleExt;
    use nabla_nn::layers::{Embedding, Linear, Recurrent, Reshape, SequenceOutput, Sequential};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn text_model(context: usize) -> TextModel {
        TextModel {
            spec: TextSpec {
                context,
                carry_state: false,
            },
            vocabulary: Vocabulary::of("abcdefgh \n"),
        }
    }

    fn char_model(cell: RecurrentCell) -> Sequential {
        let mut rng = Rng::seed(7);
        Sequential::new()
            .with(Embedding::new(10, 8, &mut rng).unwrap())
            .with(
                Recurrent::builder(cell, 8, 16)
                    .layers(2)
                    .output(SequenceOutput::All)
                    .build(&mut rng)
                    .unwrap(),
            )
            .with(Linear::new(16, 10, &mut rng).unwrap())
    }

    /// Truncated BPTT: with the state carried, an epoch's batches read each stream as one
    /// sequence. With a learning rate too small to move an f32 weight, the epoch's training
    /// loss and the carried validation loss both equal the loss of one pass over each whole
    /// stream from a zero state; without the state they do not (every window restarts).
    #[test]
    fn carried_training_reads_each_stream_as_one_sequence() {
        use crate::trainer::{History, TrainConfig, Trainer, evaluate_batches};
        use nabla_nn::loss::Loss;
        let ids: Vec<usize> = (0..163).map(|i| (i * 7 + i / 3) % 10).collect();
        let (streams, context) = (4, 5);
        let spec = TextSpec {
            context,
            carry_state: true,
        };
        // 162 predictions: stretches of 40, each 8 windows of 5.
        let data = spec.stream_dataset(&ids, streams, "text").unwrap();
        assert_eq!(data.len(), streams * 8);
        let model = char_model(RecurrentCell::Lstm);
        let loss = Loss::CrossEntropy(Default::default());
        let stretch = 40;
        let at = |s: usize, j: usize| ids[s * stretch + j];
        let x: Vec<f32> = (0..streams)
            .flat_map(|s| (0..stretch).map(move |j| at(s, j) as f32))
            .collect();
        let y: Vec<i64> = (0..streams)
            .flat_map(|s| (0..stretch).map(move |j| at(s, j + 1) as i64))
            .collect();
        let out = model
            .predict(&Tensor::from_vec(x, [streams, stretch]).unwrap())
            .unwrap();
        let target = Tensor::from_vec(y, [streams, stretch]).unwrap();
        let direct = loss
            .compute(&out, &target)
            .unwrap()
            .to_scalar_f64()
            .unwrap();
        let epoch_loss = |carry_state: bool| {
            let config = TrainConfig {
                epochs: 1,
                batch_size: streams,
                loss: loss.clone(),
                carry_state,
                ..Default::default()
            };
            let mut sgd = nabla_nn::optim::Sgd::new(1e-30).unwrap();
            let mut trainer = Trainer::new(&model, &mut sgd, &config, History::default()).unwrap();
            trainer.run_epoch(&data, None).unwrap().train["loss"]
        };
        let close = |a: f64| (a - direct).abs() < 1e-5 * direct;
        let carried = epoch_loss(true);
        assert!(close(carried), "carried {carried} vs one pass {direct}");
        let valid = evaluate_batches(&model, &data, &loss, streams, None, true).unwrap()["loss"];
        assert!(close(valid), "valid {valid} vs one pass {direct}");
        let windowed = epoch_loss(false);
        assert!(
            !close(windowed) && (windowed - direct).abs() > 1e-3,
            "windowed {windowed}"
        );
        // Partial batches cannot carry a state per row: an error, not a silent restart.
        let e = evaluate_batches(&model, &data, &loss, 5, None, true).unwrap_err();
        assert!(e.to_string().contains("full batches"), "{e}");
    }

    /// The same model, declared unable to run step by step: generation re-reads the window.
    struct Rereading<'a>(&'a dyn Module);

    impl Module for Rereading<'_> {
        fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> nabla_core::Result<Tensor> {
            self.0.forward(x, &mut Ctx::eval())
        }
        fn describe(&self) -> String {
            self.0.describe()
        }
    }

    #[test]
    fn carrying_the_state_writes_what_rereading_the_whole_text_writes() {
        // With a context longer than prompt + text, the re-reading path reads everything from
        // the start for each character: the same distribution as carrying the state.
        let text = text_model(64);
        for cell in [
            RecurrentCell::Lstm,
            RecurrentCell::Gru,
            RecurrentCell::RnnTanh,
        ] {
            let model = char_model(cell);
            assert!(model.runs_step_by_step());
            let write = |model: &dyn Module| {
                generate(model, &text, "abc d", 50, 1.0, &mut Rng::seed(3)).unwrap()
            };
            let counted = Counting(&model, AtomicUsize::new(0));
            let (carried, reread) = (write(&counted), write(&Rereading(&model)));
            assert_eq!(carried.chars().count(), 50);
            assert_eq!(carried, reread, "{cell:?}");
            // Carrying the state, the model read the prompt and then each new character once.
            assert_eq!(counted.1.load(Ordering::Relaxed), 5 + 49);
            // Nothing to write: nothing read.
            let none = generate(&counted, &text, "abc d", 0, 1.0, &mut Rng::seed(3)).unwrap();
            assert_eq!(
                (none.as_str(), counted.1.load(Ordering::Relaxed)),
                ("", 5 + 49)
            );
        }
    }

    /// The same model, counting the steps it reads.
    struct Counting<'a>(&'a dyn Module, AtomicUsize);

    impl Module for Counting<'_> {
        fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> nabla_core::Result<Tensor> {
            self.1.fetch_add(x.dims()[1], Ordering::Relaxed);
            self.0.forward(x, ctx)
        }
        fn describe(&self) -> String {
            self.0.describe()
        }
        fn runs_step_by_step(&self) -> bool {
            self.0.runs_step_by_step()
        }
    }

    /// Carried bits: the same whether a stretch is read in one pass or in windows of 7 (the
    /// state carries across them), and equal to the log-loss of one pass over the stretch
    /// computed directly.
    #[test]
    fn carried_bits_read_each_stretch_as_one_sequence() {
        let model = char_model(RecurrentCell::Lstm);
        let ids: Vec<usize> = (0..61).map(|i| (i * 7 + i / 3) % 10).collect();
        let whole = carried_bits_of(&model, &ids, 1000, 2).unwrap();
        let windowed = carried_bits_of(&model, &ids, 7, 2).unwrap();
        assert!((whole - windowed).abs() < 1e-5, "{whole} vs {windowed}");
        // Direct: two stretches of 30 predictions, each one forward pass from zero.
        let mut nats = 0.0;
        for s in 0..2 {
            let x: Vec<f32> = (0..30).map(|j| ids[s * 30 + j] as f32).collect();
            let out = model
                .predict(&Tensor::from_vec(x, [1, 30]).unwrap())
                .unwrap();
            let log_p = out.log_softmax(-1).unwrap().to_vec_f64();
            nats -= (0..30)
                .map(|j| log_p[j * 10 + ids[s * 30 + j + 1]])
                .sum::<f64>();
        }
        let direct = nats / 60.0 / std::f64::consts::LN_2;
        assert!((whole - direct).abs() < 1e-5, "{whole} vs {direct}");
        // Cut into windows without the state, the same model scores differently.
        let mut cold = 0.0;
        for s in 0..2 {
            for w in 0..5 {
                let at = s * 30 + w * 6;
                let x: Vec<f32> = (0..6).map(|j| ids[at + j] as f32).collect();
                let out = model
                    .predict(&Tensor::from_vec(x, [1, 6]).unwrap())
                    .unwrap();
                let log_p = out.log_softmax(-1).unwrap().to_vec_f64();
                cold -= (0..6).map(|j| log_p[j * 10 + ids[at + j + 1]]).sum::<f64>();
            }
        }
        assert!((cold / 60.0 / std::f64::consts::LN_2 - whole).abs() > 1e-4);
        let err = carried_bits_of(&model, &[3], 5, 2).unwrap_err().to_string();
        assert!(err.contains("too few"), "{err}");
        // A character the model has no class for (it has 10), where it is only predicted.
        let mut foreign = ids.clone();
        foreign[60] = 12; // only ever a target: the last character of the second stretch
        let err = carried_bits_of(&model, &foreign, 7, 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "scoring the text: class target 12 is out of range for 10 outputs"
        );
    }

    #[test]
    fn a_model_that_mixes_steps_rereads_its_window() {
        // A reshape makes the model depend on the sequence's length: no step-by-step running.
        let mut rng = Rng::seed(1);
        let model = Sequential::new()
            .with(Embedding::new(10, 4, &mut rng).unwrap())
            .with(Reshape { shape: vec![64, 4] })
            .with(Linear::new(4, 10, &mut rng).unwrap());
        assert!(!model.runs_step_by_step());
        assert!(char_model(RecurrentCell::Lstm).runs_step_by_step());
    }
}
