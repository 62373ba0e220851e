//! A config turned into a training run: the data read, split and preprocessed (fitted on the
//! training split only), the model, loss, optimizer and schedule built and checked, then trained
//! with checkpoints committed to the run directory as it goes (after the first and last epoch,
//! and at most every `train.checkpoint_seconds` between), resumable bit-exactly.

use crate::checkpoint::{optimizer_bytes, read_tensors, weights_bytes};
use crate::config::{
    Config, KeyError, LayerSpec, Located, LossSpec, OutputSpec, build_loss, build_model,
    build_optimizer, build_schedule, build_sparsity,
};
use crate::doctor::{Doctor, DoctorConfig};
use crate::error::{Error, Result, io};
use crate::run_dir;
use crate::trainer::{
    EarlyStopping, History, TrainConfig, Trainer, evaluate_batches, evaluate_scaled, record_json,
};
use nabla_core::{Rng, Tensor};
use nabla_data::{
    CsvOptions, CsvSchema, Dataset, Missing, Preprocessor, SequenceSpec, Table, Target, Task,
    read_csv, read_csv_with, split,
};
use nabla_nn::ModuleExt;
use nabla_nn::layers::Sequential;
use nabla_nn::loss::Loss;
use nabla_nn::optim::Optimizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a model trained on a CSV expects of new data: the CSV schema (columns, categories,
/// classes), the fitted preprocessing and the target's scale. Saved as `preprocessing.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub schema: CsvSchema,
    pub preprocessor: Preprocessor,
    /// `(mean, std)` of a standardized regression target.
    pub target_scale: Option<(f64, f64)>,
    /// The targets are 0/1 values `[n, 1]` (binary cross-entropy) rather than class indices.
    pub binary_target: bool,
    /// How rows group into sequences (long tables); the length is the preprocessor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceSpec>,
    /// An autoencoder's: the targets are the preprocessed inputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconstruct: bool,
    /// A forecast's: how a file's series becomes windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<nabla_data::SeriesSpec>,
    /// A character model's: the window length and the characters (classes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::text::TextModel>,
    /// A folder of images': the channels and size every image is read in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<nabla_data::ImageShape>,
    /// A classifier's: the training split's rows per class, in the schema's class order (what
    /// `"balanced"` loss weights are worked out from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_counts: Vec<usize>,
}

impl Preprocessing {
    /// Reads a CSV (or a series, IDX images, or images) with the training schema
    /// (`with_target`: the target column must be there).
    pub fn read(&self, path: &Path, with_target: bool) -> Result<Table> {
        Ok(self.read_named(path, with_target)?.0)
    }

    /// [`Self::read`], with the examples' names where the file names them: a folder's images
    /// (or one image file) by their paths inside the folder.
    pub fn read_named(
        &self,
        path: &Path,
        with_target: bool,
    ) -> Result<(Table, Option<Vec<String>>)> {
        if self.text.is_some() {
            return Err(Error::Data(nabla_data::Error::File {
                path: path.to_path_buf(),
                message: "a character model reads text, not rows (Preprocessing::labelled \
                          reads a text's windows)"
                    .into(),
            }));
        }
        if let Some(spec) = &self.series {
            return Ok((series_windows(spec, path)?.0, None));
        }
        if let Some(shape) = &self.image {
            let images = nabla_data::read_images_with(path, shape, &self.schema, with_target)?;
            return Ok((images.table, Some(file_names(&images.files))));
        }
        if nabla_data::is_idx(path) {
            if with_target {
                return Err(Error::Data(nabla_data::Error::File {
                    path: path.to_path_buf(),
                    message: "is an IDX image file, whose labels are in a file of their own: \
                              give that too (`nabla eval RUN IMAGES --labels LABELS`)"
                        .into(),
                }));
            }
            return Ok((nabla_data::read_idx_images_with(path, &self.schema)?, None));
        }
        let table = read_csv_with(path, &self.schema, with_target)?;
        match (&self.sequence, self.preprocessor.sequence) {
            (Some(spec), Some(shape)) => {
                let file = path.display().to_string();
                Ok((spec.group(&table, &file, Some(shape.steps))?.0, None))
            }
            _ => Ok((table, None)),
        }
    }

    /// The shape of one example as the model reads it: `[features]`, or `[steps, channels]`.
    pub fn input_shape(&self) -> Vec<usize> {
        match self.preprocessor.sequence {
            Some(s) => vec![s.steps, s.channels],
            None => vec![self.preprocessor.output_width()],
        }
    }

    /// The model's input `[rows, ...input_shape]` for a table: preprocessing applied.
    pub fn features(&self, table: &Table) -> Result<Tensor> {
        let x = self.preprocessor.transform_f32(&table.features)?;
        self.input_tensor(x, table.rows)
    }

    fn input_tensor(&self, x: Vec<f32>, rows: usize) -> Result<Tensor> {
        let mut shape = vec![rows];
        shape.extend(self.input_shape());
        Ok(Tensor::from_vec(x, shape)?)
    }

    /// A dataset for a table with targets: features preprocessed, targets as the loss wants
    /// them (class indices, 0/1 values, or standardized values). The table is consumed as
    /// its rows are converted, so that its f64 values and their f32 copy are not both held.
    pub fn dataset(&self, table: Table) -> Result<Dataset> {
        let Table {
            features,
            rows: n,
            target,
            ..
        } = table;
        let x = self.input_tensor(self.preprocessor.transform_f32_owned(features)?, n)?;
        if self.reconstruct {
            let y = x.reshape([n, self.preprocessor.output_width()])?;
            let data = Dataset::new(x, y)?;
            // The classes of a labelled file stay beside the targets, for the report.
            return Ok(match target {
                Target::Classes(c) => data.with_labels(c)?,
                _ => data,
            });
        }
        let y = match target {
            Target::Classes(c) if self.binary_target => {
                let v: Vec<f32> = c.iter().map(|&k| k as f32).collect();
                Tensor::from_vec(v, [n, 1])?
            }
            Target::Classes(c) => Tensor::from_vec(c, [n])?,
            Target::Values(v) => {
                let (mean, std) = self.target_scale.unwrap_or((0.0, 1.0));
                let v: Vec<f32> = v.iter().map(|&t| ((t - mean) / std) as f32).collect();
                Tensor::from_vec(v, [n, 1])?
            }
            Target::None => {
                return Err(Error::Invalid("the table has no target column".into()));
            }
        };
        Ok(Dataset::new(x, y)?)
    }

    /// The examples of a file with its targets, as training read them: a CSV's rows (or
    /// sequences, or a series' windows), a text's windows, a folder of class folders of
    /// images, or an IDX image file with the IDX file of its `labels`.
    pub fn labelled(&self, path: &Path, labels: Option<&Path>) -> Result<Dataset> {
        if let (Some(_), Some(labels)) = (&self.image, labels) {
            return Err(Error::Data(nabla_data::Error::File {
                path: labels.to_path_buf(),
                message: "a label file is for IDX images; a folder of images is labelled by \
                          the class folders its images are in"
                    .into(),
            }));
        }
        match (&self.text, labels) {
            (Some(text), None) => text.dataset(path),
            (None, Some(labels)) => {
                self.dataset(nabla_data::read_idx_table_with(path, labels, &self.schema)?)
            }
            // An autoencoder's targets are its inputs: the target column may be absent.
            (None, None) => self.dataset(self.read(path, !self.reconstruct)?),
            (Some(_), Some(labels)) => Err(Error::Data(nabla_data::Error::File {
                path: labels.to_path_buf(),
                message: "a label file is for IDX images; a character model's targets are \
                          its text's next characters"
                    .into(),
            })),
        }
    }

    /// What the targets demand of the model's output.
    pub fn output(&self) -> OutputSpec {
        if let Some(text) = &self.text {
            return text.output();
        }
        if self.reconstruct {
            return OutputSpec::Values(self.preprocessor.output_width());
        }
        output_of(&self.schema)
    }
}

fn output_of(schema: &CsvSchema) -> OutputSpec {
    match schema.task {
        Task::Classification => OutputSpec::Classes(schema.classes.len()),
        Task::Regression => OutputSpec::Values(1),
    }
}

/// The data of an experiment, split and preprocessed.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Dataset,
    pub valid: Option<Dataset>,
    pub test: Option<Dataset>,
}

/// Everything a config describes, built and checked: nothing has trained yet.
pub struct Experiment {
    pub config: Config,
    pub preprocessing: Preprocessing,
    pub data: Splits,
    pub model: Sequential,
    pub optimizer: Box<dyn Optimizer>,
    pub train_config: TrainConfig,
}

impl Experiment {
    /// The convergence doctor for this experiment, when the config enables it: its findings
    /// name layers by their config keys and carry the config changes that apply the remedy.
    pub fn doctor(&self) -> Option<Doctor> {
        let spec = &self.config.diagnostics;
        if !spec.enabled {
            return None;
        }
        let config = self.config.clone();
        Some(
            Doctor::new(
                DoctorConfig {
                    every: spec.every,
                    keeps_best: self
                        .config
                        .train
                        .early_stopping
                        .as_ref()
                        .is_some_and(|e| e.restore_best),
                    valid_examples: self.data.valid.as_ref().map(Dataset::len),
                },
                &self.model,
                &self.model.named_parameters(),
                &self.data.train,
            )
            .with_pixel_inputs(self.reads_pixels())
            .with_presenter(move |f| crate::doctor::fixes::present(&config, f)),
        )
    }

    /// Whether the inputs are images' intensities: a folder of images, or IDX files.
    pub fn reads_pixels(&self) -> bool {
        self.preprocessing.image.is_some() || self.config.data.train_labels.is_some()
    }

    /// Trains in memory (no run folder, no checkpoints), validating after each epoch.
    pub fn fit(&mut self) -> Result<History> {
        crate::trainer::fit(
            &self.model,
            &mut *self.optimizer,
            &self.data.train,
            self.data.valid.as_ref(),
            &self.train_config,
            &mut [],
        )
    }
}

/// The config key and type of the first layer that augments images (moves their pixels), in
/// `layers` or the blocks within.
fn augmenting_layer(layers: &[LayerSpec], key: &str) -> Option<(String, &'static str)> {
    layers.iter().enumerate().find_map(|(i, layer)| {
        let here = format!("{key}[{i}]");
        match layer {
            LayerSpec::RandomFlip { .. } => Some((here, "random_flip")),
            LayerSpec::RandomTranslation { .. } => Some((here, "random_translation")),
            LayerSpec::RandomRotation { .. } => Some((here, "random_rotation")),
            LayerSpec::RandomZoom { .. } => Some((here, "random_zoom")),
            LayerSpec::Residual { layers, .. } => {
                augmenting_layer(layers, &format!("{here}.layers"))
            }
            _ => None,
        }
    })
}

fn located(l: &Located) -> impl Fn(KeyError) -> Error + '_ {
    move |(key, message)| Error::Config(l.error(&key, message))
}

/// Reads the data and builds the model, loss, optimizer and schedule of a config, checking
/// everything before any training: an error names the config key (and its line) or the data
/// file (and its line and column).
pub fn prepare(l: &Located) -> Result<Experiment> {
    prepare_fold(l, None)
}

/// [`prepare`] with fold `i` of `k` (cross-validation) as the validation data: the rows the
/// config's split gives to training and validation are pooled and dealt into `k` stratified
/// folds; the test rows stay out. The preprocessing is fitted on the other folds.
pub fn prepare_fold(l: &Located, fold: Option<(usize, usize)>) -> Result<Experiment> {
    if l.config.gan.is_some() {
        return Err(Error::Config(l.error(
            "gan",
            "makes this a GAN config, which `nabla train` and `nabla doctor` run (as \
             `nabla_train::gan::run`); the supervised trainer, and `nabla tune` with it, train \
             a [model] of the targets",
        )));
    }
    let config = &l.config;
    let spec_err = located(l);
    // Before the data: a text carrying its state lays itself out in one stream per batch row.
    if config.train.batch_size == 0 {
        return Err(Error::Config(
            l.error("train.batch_size", "must be at least 1"),
        ));
    }
    let PreparedData {
        preprocessing,
        splits,
        output,
        loss: loss_spec,
    } = prepare_data(l, fold)?;
    if let Some(text) = &preprocessing.text {
        crate::text::check_model(l, text)?;
    }

    let mut rng = Rng::seed(config.seed);
    let model = build_model(
        &config.model,
        &preprocessing.input_shape(),
        output,
        &loss_spec,
        &mut rng,
    )
    .map_err(&spec_err)?;
    let optimizer = build_optimizer(&config.optimizer).map_err(&spec_err)?;
    let schedule = build_schedule(&config.schedule, &config.train).map_err(&spec_err)?;
    let train = &config.train;
    if train.epochs == 0 {
        return Err(Error::Config(l.error("train.epochs", "must be at least 1")));
    }
    if config.diagnostics.every == 0 {
        return Err(Error::Config(l.error(
            "diagnostics.every",
            "must be at least 1 (the doctor measures a step in every this many; \
             diagnostics.enabled = false turns it off)",
        )));
    }
    for (key, v) in [
        ("train.clip_grad_norm", train.clip_grad_norm),
        ("train.clip_grad_value", train.clip_grad_value),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            return Err(Error::Config(
                l.error(key, format!("must be finite and > 0, got {v}")),
            ));
        }
    }
    for (key, v) in [("train.l2", train.l2), ("train.l1", train.l1)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::Config(
                l.error(key, format!("must be finite and >= 0, got {v}")),
            ));
        }
    }
    let early_stopping = train.early_stopping.as_ref().map(|e| EarlyStopping {
        patience: e.patience,
        min_delta: e.min_delta,
        restore_best: e.restore_best,
    });
    let train_config = TrainConfig {
        epochs: train.epochs,
        batch_size: train.batch_size,
        seed: config.seed,
        loss: loss_spec
            .to_loss(&preprocessing.class_counts)
            .map_err(&spec_err)?,
        schedule,
        clip_grad_norm: train.clip_grad_norm,
        clip_grad_value: train.clip_grad_value,
        l2: train.l2,
        l1: train.l1,
        activity: match &train.sparsity {
            Some(spec) => Some(build_sparsity(spec, &config.model.layers).map_err(&spec_err)?),
            None => None,
        },
        early_stopping,
        metrics_log: None,
        verbose: false,
        target_scale: preprocessing.target_scale,
        carry_state: preprocessing
            .text
            .as_ref()
            .is_some_and(|t| t.spec.carry_state),
    };
    // No layer a text config can hold today mixes steps and still fits a character model's
    // shapes; this keeps a future one (a convolution over time, attention) from silently
    // training on a state its outputs do not continue.
    if train_config.carry_state && !nabla_nn::Module::runs_step_by_step(&model) {
        return Err(Error::Config(l.error(
            "data.text.carry_state",
            "carries the recurrent state from one window to the next, which needs a model \
             that reads a text one step at a time (embedding, recurrent, linear and \
             elementwise layers); this model has layers that mix steps (conv, pool, reshape, \
             flatten or batch norm): set carry_state = false",
        )));
    }
    Ok(Experiment {
        config: config.clone(),
        preprocessing,
        data: splits,
        model,
        optimizer,
        train_config,
    })
}

/// A config's data read, split and preprocessed (fitted on the training split only), with
/// what the targets demand of a model and the loss that reads them.
pub(crate) struct PreparedData {
    pub preprocessing: Preprocessing,
    pub splits: Splits,
    pub output: OutputSpec,
    pub loss: LossSpec,
}

/// The data half of [`prepare_fold`] (a GAN's run reads its data the same way).
pub(crate) fn prepare_data(l: &Located, fold: Option<(usize, usize)>) -> Result<PreparedData> {
    let config = &l.config;
    let data = &config.data;
    let spec_err = located(l);
    let options = CsvOptions {
        target: data.target.clone(),
        features: data.features.clone(),
        categorical: data.categorical.clone(),
        task: data.task,
        missing: if data.impute.is_some() {
            Missing::Keep
        } else {
            Missing::Error
        },
    };
    if data.image.is_some() && !data.train.is_dir() {
        return Err(Error::Config(l.error(
            "data.image",
            "reads a folder of images, but data.train is a file (the images of each class go \
             in a folder named by the class, inside the folder data.train names)",
        )));
    }
    if let Some(spec) = &data.text {
        if fold.is_some() {
            return Err(Error::Config(l.error(
                "tune.folds",
                "k-fold cross-validation of a text would train on the characters around its \
                 validation windows: use tune.folds = 1 (the last valid_split of the text)",
            )));
        }
        return crate::text::prepare_text(l, spec);
    }
    let (mut image_shape, mut image_files) = (None, None);
    let (table, schema) = match (&data.series, &data.train_labels) {
        (None, _) if data.train.is_dir() => {
            check_image_spec(l)?;
            let (images, schema, shape) =
                nabla_data::read_image_folder(&data.train, &data.image.unwrap_or_default())?;
            image_shape = Some(shape);
            image_files = Some(file_names(&images.files));
            (images.table, schema)
        }
        (Some(spec), _) => {
            check_series_spec(l)?;
            let values = nabla_data::read_series(&data.train, &spec.column)?;
            let table = spec
                .windows(&values, &data.train.display().to_string())
                .map_err(|e| Error::Config(l.error("data.series", e.to_string())))?;
            let schema = CsvSchema {
                features: table
                    .feature_names
                    .iter()
                    .map(|name| nabla_data::csv::FeatureColumn {
                        name: name.clone(),
                        categories: None,
                    })
                    .collect(),
                target: spec.column.clone(),
                task: Task::Regression,
                classes: Vec::new(),
                missing: Missing::Error,
            };
            (table, schema)
        }
        (None, Some(labels)) => {
            check_idx_spec(l)?;
            nabla_data::read_idx_table(&data.train, labels)?
        }
        (None, None) => {
            if data.test_labels.is_some() {
                return Err(Error::Config(l.error(
                    "data.test_labels",
                    "labels in a separate file go with IDX images: set data.train_labels too, \
                     or remove this (a CSV holds its target column)",
                )));
            }
            read_csv(&data.train, &options)?
        }
    };
    // One class is a mistake in the data or the target column; an autoencoder or a GAN learns
    // the examples themselves and needs none.
    if schema.task == Task::Classification
        && schema.classes.len() < 2
        && !data.reconstruct
        && config.gan.is_none()
    {
        let classes = schema.classes.join(", ");
        let (key, message) = match (&image_shape, &data.train_labels) {
            (Some(_), _) => (
                "data.train",
                format!(
                    "one class folder ({classes}): a classifier needs a folder for each of at \
                     least two classes"
                ),
            ),
            (None, labels) => {
                let (key, source) = match labels {
                    Some(labels) => ("data.train_labels", labels),
                    None => ("data.target", &data.train),
                };
                let message = format!(
                    "{}: the target `{}` holds one class ({classes}) in all {} rows: a \
                     classifier needs at least two (a numeric target to predict: data.task = \
                     \"regression\")",
                    source.display(),
                    schema.target,
                    table.rows
                );
                (key, message)
            }
        };
        return Err(Error::Config(l.error(key, message)));
    }
    let (table, sequence_shape) = match &data.sequence {
        Some(spec) => {
            if data.train_labels.is_some() {
                return Err(Error::Config(l.error(
                    "data.sequence",
                    "groups the rows of a CSV into sequences; IDX images are not sequences",
                )));
            }
            let (table, shape) = spec
                .group(&table, &data.train.display().to_string(), None)
                .map_err(|e| Error::Config(l.error("data.sequence", e.to_string())))?;
            (table, Some(shape))
        }
        None => (table, None),
    };
    if let nabla_data::Scaling::Divide(by) = data.scaling
        && !(by.is_finite() && by > 0.0)
    {
        return Err(Error::Config(l.error(
            "data.scaling",
            format!("divide needs a finite number > 0, got {by}"),
        )));
    }
    if data.reconstruct {
        l.refuse_set(
            &[
                ("data.sequence", data.sequence.is_some()),
                ("data.scale_target", data.scale_target),
            ],
            "does not apply to an autoencoder (data.reconstruct = true), whose targets are its \
             flat inputs",
        )?;
    }
    // Hold out validation (and test, without a test file) before fitting anything.
    let labels = match (&table.target, data.stratify) {
        (Target::Classes(c), true) => Some(c.as_slice()),
        _ => None,
    };
    let test_fraction = if data.test.is_some() {
        0.0
    } else {
        data.test_split
    };
    let parts = match &data.series {
        Some(spec) => spec
            .split(table.rows, data.valid_split)
            .map_err(|e| Error::Config(l.error("data.series.test_last", e.to_string())))?,
        None => split(
            table.rows,
            data.valid_split,
            test_fraction,
            config.seed,
            labels,
        )
        .map_err(|e| Error::Config(l.error("data.valid_split", e.to_string())))?,
    };
    let parts = match fold {
        None => parts,
        Some(_) if data.series.is_some() => {
            return Err(Error::Config(l.error(
                "tune.folds",
                "k-fold cross-validation of a series would train on the future of its \
                 validation steps: use tune.folds = 1 (the last valid_split of the training \
                 windows)",
            )));
        }
        Some((i, k)) => {
            let mut pool = parts.train;
            pool.extend(parts.valid);
            pool.sort_unstable();
            let (train, valid) = nabla_data::k_fold(&pool, k, i, config.seed, labels)
                .map_err(|e| Error::Config(l.error("tune.folds", e.to_string())))?;
            nabla_data::Split {
                train,
                valid,
                test: parts.test,
            }
        }
    };
    if parts.train.is_empty() {
        return Err(Error::Config(l.error(
            "data.valid_split",
            format!("no training rows are left of {}", table.rows),
        )));
    }
    // Validation and test rows are copied out (they are few); the training rows then take
    // over the table's own buffer, so that a large table is never held twice.
    let held_out = |rows: &[usize]| (!rows.is_empty()).then(|| table.select(rows));
    let valid_table = held_out(&parts.valid);
    let test_table = held_out(&parts.test);
    let train_table = table.into_rows(&parts.train);
    let preprocessor = match sequence_shape {
        Some(shape) => {
            Preprocessor::fit_sequences(&train_table.features, shape, data.impute, data.scaling)
                .map_err(|e| match data.scaling {
                    // The one scaling sequences refuse: located at the key that chose it.
                    nabla_data::Scaling::PcaWhiten { .. } => {
                        Error::Config(l.error("data.scaling", e.to_string()))
                    }
                    _ => e.into(),
                })?
        }
        None => Preprocessor::fit(
            &train_table.features,
            train_table.width(),
            data.impute,
            data.scaling,
        )?,
    };
    let target_scale = match (&train_table.target, data.scale_target) {
        // The features' standardization, fitted on the target as one column.
        (Target::Values(v), true) => {
            match Preprocessor::fit(v, 1, None, nabla_data::Scaling::Standardize)?.scaler {
                nabla_data::preprocess::Scaler::Affine { shift, scale } => {
                    Some((shift[0], scale[0]))
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "standardizing the target gave {other:?}, not an affine scaler"
                    )));
                }
            }
        }
        (_, true) => {
            return Err(Error::Config(l.error(
                "data.scale_target",
                "only a regression target can be standardized",
            )));
        }
        _ => None,
    };
    let output = if data.reconstruct {
        OutputSpec::Values(preprocessor.output_width())
    } else {
        output_of(&schema)
    };
    let loss_spec = match build_loss(config.loss.as_ref(), output) {
        Err((key, _)) if data.reconstruct => {
            return Err(Error::Config(l.error(
                &key,
                "an autoencoder (data.reconstruct = true) reconstructs its inputs: use mse, l1 \
                 or huber",
            )));
        }
        other => other.map_err(&spec_err)?,
    };
    if data.reconstruct
        && let Some((key, layer)) = augmenting_layer(&config.model.layers, "model.layers")
    {
        return Err(Error::Config(l.error(
            &key,
            format!(
                "{layer} augments the input, but an autoencoder (data.reconstruct = true) is \
                 scored against the input as read: the reconstruction of a moved image would \
                 be compared with the unmoved one (a denoising autoencoder corrupts its input \
                 with gaussian_noise or masking_noise instead)"
            ),
        )));
    }
    let mut preprocessing = Preprocessing {
        reconstruct: data.reconstruct,
        class_counts: Vec::new(),
        schema,
        preprocessor,
        target_scale,
        binary_target: matches!(
            loss_spec,
            LossSpec::BinaryCrossEntropy { .. } | LossSpec::BinaryCrossEntropyWithLogits { .. }
        ),
        sequence: data.sequence.clone(),
        series: data.series.clone(),
        text: None,
        image: image_shape,
    };
    // The held-out examples keep their names, for the report's mistakes.
    let named = |data: Dataset, names: Option<Vec<String>>| match names {
        Some(names) => data.with_names(names),
        None => Ok(data),
    };
    let train_is_idx = data.train_labels.is_some();
    let subset = |table: Option<Table>, rows: &[usize]| -> Result<Option<Dataset>> {
        table
            .map(|t| {
                let names =
                    example_names(&data.train, &t, rows, image_files.as_deref(), train_is_idx);
                Ok(named(preprocessing.dataset(t)?, names)?)
            })
            .transpose()
    };
    let test = match &data.test {
        Some(path) => {
            let (table, files) = match &data.test_labels {
                Some(labels) => (
                    nabla_data::read_idx_table_with(path, labels, &preprocessing.schema)?,
                    None,
                ),
                None => preprocessing.read_named(path, true)?,
            };
            let rows: Vec<usize> = (0..table.rows).collect();
            let idx = data.test_labels.is_some();
            let names = example_names(path, &table, &rows, files.as_deref(), idx);
            Some(named(preprocessing.dataset(table)?, names)?)
        }
        None => subset(test_table, &parts.test)?,
    };
    let valid = subset(valid_table, &parts.valid)?;
    let train = preprocessing.dataset(train_table)?;
    if preprocessing.schema.task == Task::Classification && !data.reconstruct {
        // One count per class of the schema, those without training rows included.
        let mut counts = train.class_counts();
        counts.resize(preprocessing.schema.classes.len(), 0);
        preprocessing.class_counts = counts;
    }
    let splits = Splits { train, valid, test };
    Ok(PreparedData {
        preprocessing,
        splits,
        output,
        loss: loss_spec,
    })
}

/// A series is one column read in row order: the options that choose columns, targets or
/// other shapes do not apply.
fn check_series_spec(l: &Located) -> Result<()> {
    let data = &l.config.data;
    let other = [
        (
            "data.target",
            data.target.is_some(),
            "the target is the series' next value",
        ),
        (
            "data.features",
            data.features.is_some(),
            "the features are the series' past values",
        ),
        (
            "data.categorical",
            !data.categorical.is_empty(),
            "a series is one numeric column",
        ),
        (
            "data.impute",
            data.impute.is_some(),
            "a forecast needs every step of the series",
        ),
        (
            "data.task",
            data.task.is_some_and(|t| t != Task::Regression),
            "a forecast is a regression",
        ),
        (
            "data.train_labels",
            data.train_labels.is_some(),
            "a series is a CSV column",
        ),
        (
            "data.test",
            data.test.is_some(),
            "a series' test set is its last data.series.test_last steps",
        ),
        (
            "data.test_split",
            data.test_split != 0.0,
            "a series' test set is its last data.series.test_last steps",
        ),
        (
            "data.sequence",
            data.sequence.is_some(),
            "a series is windowed by data.series alone",
        ),
        (
            "data.reconstruct",
            data.reconstruct,
            "a series is forecast, not reconstructed",
        ),
    ];
    if let Some((key, _, why)) = other.iter().find(|(_, set, _)| *set) {
        return Err(Error::Config(
            l.error(key, format!("does not apply with data.series: {why}")),
        ));
    }
    if data.series.as_ref().is_some_and(|s| s.window == 0) {
        return Err(Error::Config(l.error(
            "data.series.window",
            "must be at least 1 (past values per example)",
        )));
    }
    Ok(())
}

/// The options that choose a CSV's columns and what its target is, each with whether it is
/// set: images (IDX or a folder) have no columns, and their classes come with them.
fn column_options(data: &crate::config::DataSpec) -> [(&'static str, bool); 5] {
    [
        ("data.target", data.target.is_some()),
        ("data.features", data.features.is_some()),
        ("data.categorical", !data.categorical.is_empty()),
        ("data.impute", data.impute.is_some()),
        (
            "data.task",
            data.task.is_some_and(|t| t != Task::Classification),
        ),
    ]
}

/// Image files' paths (inside the folder read), as examples' names.
fn file_names(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

/// How the report names the examples of `table`, which are the examples `rows` of `file`: an
/// image by its path in the folder (`files`, one per example of the file), an IDX image by its
/// index in the file (`idx`), a CSV row or sequence by the line it starts on; a series'
/// windows have no names.
fn example_names(
    file: &Path,
    table: &Table,
    rows: &[usize],
    files: Option<&[String]>,
    idx: bool,
) -> Option<Vec<String>> {
    let file = file.display();
    if let Some(files) = files {
        return Some(rows.iter().map(|&i| files[i].clone()).collect());
    }
    if idx {
        return Some(rows.iter().map(|&i| format!("{file} #{i}")).collect());
    }
    let lines = table.lines.as_ref()?;
    Some(lines.iter().map(|line| format!("{file}:{line}")).collect())
}

/// A folder of images is classified by the class folders its images are in: the CSV and IDX
/// options do not apply.
fn check_image_spec(l: &Located) -> Result<()> {
    let data = &l.config.data;
    let not_for_images = [
        &column_options(data)[..],
        &[
            ("data.train_labels", data.train_labels.is_some()),
            ("data.test_labels", data.test_labels.is_some()),
            ("data.sequence", data.sequence.is_some()),
            ("data.scale_target", data.scale_target),
        ],
    ]
    .concat();
    l.refuse_set(
        &not_for_images,
        "applies to CSV and IDX files; the images of a folder (data.train) are classified by \
         the class folders they are in",
    )?;
    if let Some(Err((field, message))) = data.image.map(|spec| spec.check()) {
        return Err(Error::Config(
            l.error(&format!("data.image.{field}"), message),
        ));
    }
    Ok(())
}

/// IDX data has no columns to choose and no missing values: the CSV options do not apply,
/// and IDX test images need their labels.
fn check_idx_spec(l: &Located) -> Result<()> {
    let data = &l.config.data;
    l.refuse_set(
        &column_options(data),
        "applies to CSV files; IDX images (data.train_labels is set) are classified by their \
         label file",
    )?;
    if data.test.is_some() && data.test_labels.is_none() {
        return Err(Error::Config(l.error(
            "data.test",
            "IDX test images need their labels: set data.test_labels",
        )));
    }
    if data.test.is_none() && data.test_labels.is_some() {
        return Err(Error::Config(
            l.error("data.test_labels", "labels without images: set data.test"),
        ));
    }
    Ok(())
}

/// What `history.json` holds: the training history, and the test metrics once finished.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub history: History,
    /// Whether training ended (epochs done or stopped early) and the final weights are saved.
    pub finished: bool,
    /// Metrics of the final model on the test data (when there is some).
    pub test: Option<BTreeMap<String, f64>>,
    /// Wall-clock seconds spent training, over all sessions of the run.
    pub train_seconds: f64,
    /// An autoencoder's code statistics on the test (or validation) data, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<crate::autoencoder::CodeStats>,
    /// An autoencoder's reconstruction error per class on the same data, when it is labelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_errors: Option<Vec<crate::autoencoder::ClassError>>,
    /// A GAN's final samples measured against real data, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gan: Option<crate::gan::run::GanOutcome>,
}

/// A run's final figures, by where they come from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FinalMetrics<'a> {
    /// Training metrics of the last epoch.
    pub train: Option<&'a BTreeMap<String, f64>>,
    /// Validation metrics of the best epoch.
    pub valid: Option<&'a BTreeMap<String, f64>>,
    /// Test metrics of the final model.
    pub test: Option<&'a BTreeMap<String, f64>>,
}

impl RunRecord {
    /// The figures a summary shows: last-epoch training, best-epoch validation, final test.
    pub fn final_metrics(&self) -> FinalMetrics<'_> {
        let h = &self.history;
        FinalMetrics {
            train: h.epochs.last().map(|r| &r.train),
            valid: h
                .best_epoch
                .and_then(|b| h.epochs.get(b))
                .and_then(|r| r.valid.as_ref()),
            test: self.test.as_ref(),
        }
    }
}

impl<'a> FinalMetrics<'a> {
    /// The rows that exist, with the given labels for train, validation and test.
    pub fn rows(
        &self,
        labels: [&'static str; 3],
    ) -> Vec<(&'static str, &'a BTreeMap<String, f64>)> {
        [self.train, self.valid, self.test]
            .into_iter()
            .zip(labels)
            .filter_map(|(m, label)| m.map(|m| (label, m)))
            .collect()
    }
}

/// How a run reports progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// One line per epoch on stderr (and a bar when stderr is a terminal).
    pub verbose: bool,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub record: RunRecord,
}

fn commit_checkpoint(
    dir: &Path,
    config: &Config,
    preprocessing: &Preprocessing,
    trainer: &Trainer<'_>,
    record: &RunRecord,
    model_vars: &[(String, nabla_core::Var)],
) -> Result<()> {
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        (run_dir::MODEL, weights_bytes(model_vars)?),
        (
            run_dir::OPTIMIZER,
            optimizer_bytes(trainer.optimizer().name(), &trainer.optimizer().state())?,
        ),
        (run_dir::HISTORY, json_bytes(record)?),
        (run_dir::METRICS, metrics_lines(&record.history)),
        (
            run_dir::CONFIG,
            config
                .to_toml()
                .map_err(|e| Error::Invalid(format!("config: {e}")))?
                .into_bytes(),
        ),
        (run_dir::PREPROCESSING, json_bytes(preprocessing)?),
    ];
    let best = trainer.best_weights();
    if !best.is_empty() {
        let named: Vec<(String, Tensor)> = model_vars
            .iter()
            .map(|(n, _)| n.clone())
            .zip(best.iter().cloned())
            .collect();
        files.push((run_dir::BEST, crate::checkpoint::serialize(&named, None)?));
    }
    run_dir::commit(dir, &files)
}

pub(crate) fn json_bytes(value: &impl Serialize) -> Result<Vec<u8>> {
    crate::readable_json::to_vec(value).map_err(|e| Error::Invalid(format!("json: {e}")))
}

pub(crate) fn metrics_lines(history: &History) -> Vec<u8> {
    let mut out = String::new();
    for r in &history.epochs {
        out += &record_json(r).to_string();
        out.push('\n');
    }
    out.into_bytes()
}

/// Trains a prepared experiment into `dir` (which must not hold another run), committing
/// checkpoints as it goes.
pub fn train(exp: Experiment, dir: &Path, progress: Progress) -> Result<RunSummary> {
    in_new_run_dir(dir, || {
        train_from(exp, dir, RunRecord::default(), Vec::new(), progress)
    })
}

/// Creates the run directory `dir` and trains into it with `run`; a run that fails before its
/// first checkpoint leaves nothing behind.
pub(crate) fn in_new_run_dir(
    dir: &Path,
    run: impl FnOnce() -> Result<RunSummary>,
) -> Result<RunSummary> {
    run_dir::create(dir)?;
    let result = run();
    if result.is_err() && !run_dir::is_run(dir) {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// Continues the run in `dir` where its last checkpoint left it (bit-exactly as if it had never
/// stopped), or reports it finished.
pub fn resume(dir: &Path, progress: Progress) -> Result<RunSummary> {
    run_dir::open(dir)?;
    if is_gan_run(dir)? {
        return crate::gan::run::resume(dir, progress);
    }
    let record: RunRecord = read_json(&dir.join(run_dir::HISTORY))?;
    if record.finished {
        // A run stopped after its last checkpoint but before its report: finish the report.
        if !dir.join(run_dir::REPORT).is_file() {
            write_report(dir, &open_experiment(dir)?)?;
        }
        return Ok(RunSummary {
            dir: dir.to_path_buf(),
            record,
        });
    }
    let mut exp = open_experiment(dir)?;
    restore_optimizer(&dir.join(run_dir::OPTIMIZER), exp.optimizer.as_mut())?;
    let best_path = dir.join(run_dir::BEST);
    let best = if best_path.is_file() {
        let (tensors, _) = read_tensors(&best_path)?;
        exp.model
            .state_vars()
            .iter()
            .map(|(n, var)| match tensors.get(n) {
                Some(t) => Ok(t.clone()),
                None if crate::checkpoint::may_be_missing(n) => Ok(var.as_tensor().detach()),
                None => Err(Error::Checkpoint {
                    path: best_path.clone(),
                    message: format!("{n} is missing"),
                }),
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    train_from(exp, dir, record, best, progress)
}

/// Loads the state saved at `path` into `optimizer`, which must be the same kind.
pub(crate) fn restore_optimizer(path: &Path, optimizer: &mut dyn Optimizer) -> Result<()> {
    let (name, state) = crate::checkpoint::load_optimizer(path)?;
    if name != optimizer.name() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "holds {name} state, but the config's optimizer is {}",
                optimizer.name()
            ),
        });
    }
    Ok(optimizer.load_state(&state)?)
}

/// Whether the run in `dir` trains a GAN (its config has `[gan]`).
pub fn is_gan_run(dir: &Path) -> Result<bool> {
    Ok(crate::config::load(&dir.join(run_dir::CONFIG), &[])?
        .config
        .gan
        .is_some())
}

/// The experiment of a run directory, with the saved weights loaded (data read again, with the
/// same seed: the same splits and preprocessing).
pub fn open_experiment(dir: &Path) -> Result<Experiment> {
    let config_path = dir.join(run_dir::CONFIG);
    let l = crate::config::load(&config_path, &[])?;
    let exp = prepare(&l)?;
    check_same_data(dir, &exp.preprocessing)?;
    crate::checkpoint::load_weights(&dir.join(run_dir::MODEL), &exp.model.state_vars())?;
    Ok(exp)
}

/// Checks that the data read again for the run in `dir` was preprocessed as when the run
/// started (else the saved weights would meet other inputs).
pub(crate) fn check_same_data(dir: &Path, preprocessing: &Preprocessing) -> Result<()> {
    let saved: Preprocessing = read_json(&dir.join(run_dir::PREPROCESSING))?;
    if &saved != preprocessing {
        return Err(Error::Checkpoint {
            path: dir.join(run_dir::PREPROCESSING),
            message: "the training data changed since this run started (the fitted \
                      preprocessing differs); start a new run"
                .into(),
        });
    }
    Ok(())
}

/// Reads a JSON file of a run, with an error naming it.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!("unreadable: {e}"),
    })
}

fn train_from(
    mut exp: Experiment,
    dir: &Path,
    mut record: RunRecord,
    best: Vec<Tensor>,
    progress: Progress,
) -> Result<RunSummary> {
    exp.train_config.verbose = progress.verbose;
    let model_vars = exp.model.state_vars();
    let started = std::time::Instant::now();
    let seconds_before = record.train_seconds;
    let history = std::mem::take(&mut record.history);
    let data = &exp.data;
    let train_config = &exp.train_config;
    let doctor = exp.doctor().map(|d| d.with_console(true));
    let mut trainer = Trainer::new(&exp.model, exp.optimizer.as_mut(), train_config, history)?
        .with_best_weights(best);
    if let Some(doctor) = doctor {
        trainer = trainer.with_doctor(doctor);
    }
    let every = exp.config.train.checkpoint_seconds;
    let mut last_commit: Option<std::time::Instant> = None;
    while !trainer.is_finished() {
        trainer.run_epoch(&data.train, data.valid.as_ref())?;
        if last_commit.is_some_and(|t| t.elapsed().as_secs_f64() < every) && !trainer.is_finished()
        {
            continue;
        }
        last_commit = Some(std::time::Instant::now());
        record.history = trainer.history().clone();
        record.train_seconds = seconds_before + started.elapsed().as_secs_f64();
        commit_checkpoint(
            dir,
            &exp.config,
            &exp.preprocessing,
            &trainer,
            &record,
            &model_vars,
        )?;
    }
    record.history = trainer.finish()?;
    record.finished = true;
    record.train_seconds = seconds_before + started.elapsed().as_secs_f64();
    // Batches of carried state must be the streams the data was laid out in.
    let test_batch = if train_config.carry_state {
        train_config.batch_size
    } else {
        train_config.batch_size.max(256)
    };
    record.test = match &data.test {
        Some(t) => Some(evaluate_batches(
            &exp.model,
            t,
            &train_config.loss,
            test_batch,
            train_config.target_scale,
            train_config.carry_state,
        )?),
        None => None,
    };
    if exp.preprocessing.reconstruct
        && let Some((split, data)) = evaluation_split(&exp)
    {
        (record.code, record.class_errors) = crate::autoencoder::summarize(
            &exp.config,
            &exp.model,
            data,
            split,
            &exp.preprocessing.schema.classes,
        )?;
    }
    let files: Vec<(&str, Vec<u8>)> = vec![
        (run_dir::MODEL, weights_bytes(&model_vars)?),
        (run_dir::HISTORY, json_bytes(&record)?),
        (run_dir::METRICS, metrics_lines(&record.history)),
    ];
    run_dir::commit(dir, &files)?;
    write_report(dir, &exp)?;
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        record,
    })
}

/// What the model says about each row: class probabilities (classification) or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// `probabilities[row][class]`, classes named as in the training data.
    Classes {
        classes: Vec<String>,
        probabilities: Vec<Vec<f64>>,
    },
    /// One value per row, in the target's units.
    Values(Vec<f64>),
    /// An autoencoder's reconstruction of each row (in the preprocessed units it was trained
    /// on), one column per input value.
    Reconstructions(Vec<Vec<f64>>),
}

impl Predictions {
    /// The most probable class of each row (classification).
    pub fn predicted_classes(&self) -> Vec<usize> {
        match self {
            Predictions::Classes { probabilities, .. } => probabilities
                .iter()
                .map(|p| {
                    p.iter()
                        .enumerate()
                        .fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                        .0
                })
                .collect(),
            Predictions::Values(_) | Predictions::Reconstructions(_) => Vec::new(),
        }
    }

    /// As a CSV: `predicted` then `p_{class}` per class, or `predicted` alone.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        self.to_csv_named(None)
    }

    /// As a CSV, each row led by its example's name (a `file` column) when `names` are given.
    fn to_csv_named(&self, names: Option<&[String]>) -> Result<Vec<u8>> {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let err = |e: ::csv::Error| Error::Invalid(format!("writing predictions: {e}"));
        let (header, rows): (Vec<String>, Vec<Vec<String>>) = match self {
            Predictions::Classes {
                classes,
                probabilities,
            } => {
                let mut header = vec!["predicted".to_string()];
                header.extend(classes.iter().map(|c| format!("p_{c}")));
                let rows = probabilities
                    .iter()
                    .zip(self.predicted_classes())
                    .map(|(p, k)| {
                        let mut row = vec![classes[k].clone()];
                        row.extend(p.iter().map(|v| format!("{v:.6}")));
                        row
                    })
                    .collect();
                (header, rows)
            }
            Predictions::Values(v) => (
                vec!["predicted".into()],
                v.iter().map(|x| vec![x.to_string()]).collect(),
            ),
            Predictions::Reconstructions(rows) => {
                let width = rows.first().map_or(0, Vec::len);
                (
                    (0..width).map(|i| format!("reconstructed_{i}")).collect(),
                    rows.iter()
                        .map(|row| row.iter().map(|v| format!("{v:.6}")).collect())
                        .collect(),
                )
            }
        };
        let lead = |first: &str, rest: Vec<String>| match names {
            Some(_) => std::iter::once(first.to_string()).chain(rest).collect(),
            None => rest,
        };
        w.write_record(lead("file", header)).map_err(err)?;
        for (i, row) in rows.into_iter().enumerate() {
            let name = names.and_then(|n| n.get(i)).map_or("", String::as_str);
            w.write_record(lead(name, row)).map_err(err)?;
        }
        w.into_inner()
            .map_err(|e| Error::Invalid(format!("writing predictions: {e}")))
    }
}

/// A file's predictions with the names of its examples, where the file names them (the
/// images of a folder, by their paths inside it).
#[derive(Debug, Clone, PartialEq)]
pub struct FilePredictions {
    pub names: Option<Vec<String>>,
    pub predictions: Predictions,
}

impl FilePredictions {
    /// As a CSV: [`Predictions::to_csv`]'s columns, after a `file` column when there are names.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        self.predictions.to_csv_named(self.names.as_deref())
    }
}

/// Turns the model's outputs into predictions, as the loss reads them: softmax of logits,
/// sigmoid of one logit, a probability, or a (de-standardized) value.
fn read_outputs(out: &Tensor, loss: &Loss, pre: &Preprocessing) -> Result<Predictions> {
    let n = out.dims()[0];
    let classes = &pre.schema.classes;
    Ok(match loss {
        Loss::CrossEntropy(_) => {
            let p = out.softmax(-1)?.to_vec_f64();
            let k = classes.len();
            Predictions::Classes {
                classes: classes.clone(),
                probabilities: (0..n).map(|i| p[i * k..(i + 1) * k].to_vec()).collect(),
            }
        }
        Loss::BinaryCrossEntropyWithLogits { .. } | Loss::BinaryCrossEntropy { .. } => {
            let p = if matches!(loss, Loss::BinaryCrossEntropyWithLogits { .. }) {
                out.sigmoid()?.to_vec_f64()
            } else {
                out.to_vec_f64()
            };
            Predictions::Classes {
                classes: classes.clone(),
                probabilities: p.iter().map(|&q| vec![1.0 - q, q]).collect(),
            }
        }
        _ if pre.reconstruct => {
            let v = out.to_vec_f64();
            let width = v.len() / n.max(1);
            Predictions::Reconstructions(v.chunks(width.max(1)).map(<[f64]>::to_vec).collect())
        }
        _ => {
            let (mean, std) = pre.target_scale.unwrap_or((0.0, 1.0));
            Predictions::Values(out.to_vec_f64().iter().map(|v| v * std + mean).collect())
        }
    })
}

/// A trained model as saved in a run directory, ready for evaluation and prediction (the
/// training data is not needed).
pub struct SavedModel {
    pub config: Config,
    pub preprocessing: Preprocessing,
    pub model: Sequential,
    pub loss: Loss,
}

/// Loads the model of the run in `dir`.
pub fn load_model(dir: &Path) -> Result<SavedModel> {
    run_dir::open(dir)?;
    let l = crate::config::load(&dir.join(run_dir::CONFIG), &[])?;
    if l.config.gan.is_some() {
        return Err(Error::Checkpoint {
            path: dir.to_path_buf(),
            message: "is a GAN run: its generator makes examples from noise and has nothing to \
                      evaluate or predict on a file; draw samples with `nabla sample`"
                .into(),
        });
    }
    let preprocessing: Preprocessing = read_json(&dir.join(run_dir::PREPROCESSING))?;
    let output = preprocessing.output();
    let loss_spec = build_loss(l.config.loss.as_ref(), output).map_err(located(&l))?;
    let model = build_model(
        &l.config.model,
        &preprocessing.input_shape(),
        output,
        &loss_spec,
        &mut Rng::seed(l.config.seed),
    )
    .map_err(located(&l))?;
    crate::checkpoint::load_weights(&dir.join(run_dir::MODEL), &model.state_vars())?;
    let loss = loss_spec
        .to_loss(&preprocessing.class_counts)
        .map_err(located(&l))?;
    Ok(SavedModel {
        config: l.config,
        preprocessing,
        model,
        loss,
    })
}

impl SavedModel {
    /// Loss and metrics on a CSV with the target column, or on IDX images with their IDX
    /// `labels` (a character model's: on a text, and also with its state carried across
    /// windows, `bits_per_char_carried`).
    pub fn evaluate(&self, path: &Path, labels: Option<&Path>) -> Result<BTreeMap<String, f64>> {
        let score = |data: &Dataset| {
            evaluate_scaled(
                &self.model,
                data,
                &self.loss,
                256,
                self.preprocessing.target_scale,
            )
        };
        // (A label file with a text is an error `labelled` gives.)
        let Some(text) = self
            .preprocessing
            .text
            .as_ref()
            .filter(|_| labels.is_none())
        else {
            return score(&self.preprocessing.labelled(path, labels)?);
        };
        // A character model: the windows, and the text read with its state carried across them.
        let ids = text.ids(path)?;
        let mut metrics = score(&text.spec.dataset(&ids, &path.display().to_string())?)?;
        if let Some(bits) = crate::text::carried_bits(&self.model, text, &ids)? {
            metrics.insert("bits_per_char_carried".into(), bits);
        }
        Ok(metrics)
    }

    /// Predictions for every row of a CSV (the target column may be absent); for a series,
    /// one forecast per window, in the series' levels.
    pub fn predict(&self, path: &Path) -> Result<Predictions> {
        Ok(self.predict_file(path)?.predictions)
    }

    /// [`Self::predict`], with the examples' names where the file names them: a folder's
    /// images (or one image file) by their paths inside the folder.
    pub fn predict_file(&self, path: &Path) -> Result<FilePredictions> {
        if self.preprocessing.text.is_some() {
            return Err(Error::Data(nabla_data::Error::File {
                path: path.to_path_buf(),
                message: format!(
                    "a character model predicts a distribution over {} characters at every \
                     step: measure it on a text with `nabla eval` (bits per character), or \
                     write text with `nabla sample RUN --prompt ...`",
                    self.preprocessing.schema.classes.len()
                ),
            }));
        }
        let pre = &self.preprocessing;
        // A series is read once: its windows, and the levels that forecast changes add to.
        let (table, series, names) = match &pre.series {
            Some(spec) => {
                let (table, values) = series_windows(spec, path)?;
                (table, Some((spec, values)), None)
            }
            None => {
                let (table, names) = pre.read_named(path, false)?;
                (table, None, names)
            }
        };
        let out = crate::trainer::predict(&self.model, &pre.features(&table)?, 256)?;
        let predictions = match (series, read_outputs(&out, &self.loss, pre)?) {
            // The model forecasts changes: add back the level each change starts from.
            (Some((spec, values)), Predictions::Values(changes)) if spec.difference > 0 => {
                Predictions::Values(spec.levels(&values, &changes))
            }
            (_, predictions) => predictions,
        };
        Ok(FilePredictions { names, predictions })
    }
}

/// A series file's windows (the examples) and its values.
fn series_windows(
    spec: &nabla_data::SeriesSpec,
    path: &Path,
) -> nabla_data::Result<(Table, Vec<f64>)> {
    let values = nabla_data::read_series(path, &spec.column)?;
    let table = spec.windows(&values, &path.display().to_string())?;
    Ok((table, values))
}

/// How many of the examples got wrong the report shows.
const SHOWN_MISTAKES: usize = 12;

/// The `candidates` of `data` (indices) with the highest `score` (ties: the first): a
/// classifier's wrong examples by the probability it gave the wrong class, or a regression's
/// examples by their absolute error. Each comes with its name, `values(i)` (true, predicted)
/// and inputs in the data's own units (the scaling undone). `wrong` is a classifier's count of
/// wrong examples.
fn mistakes(
    exp: &Experiment,
    data: &Dataset,
    names: &[String],
    (mut candidates, wrong): (Vec<usize>, Option<usize>),
    score: impl Fn(usize) -> f64,
    values: impl Fn(usize) -> (String, String),
) -> Result<crate::report::Mistakes> {
    use crate::report::ShownInputs;
    candidates.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    candidates.truncate(SHOWN_MISTAKES);
    let width = data.x().elem_count() / data.len().max(1);
    let x = data.select(&candidates)?.x().to_vec_f64();
    /// How an example's inputs can be shown.
    enum Shown {
        Image([usize; 3]),
        Columns,
        Hidden,
    }
    let (noun, how) = match (
        &exp.preprocessing.image,
        exp.config.data.train_labels.is_some(),
    ) {
        (Some(shape), _) => (
            "images",
            Shown::Image([shape.channels, shape.height, shape.width]),
        ),
        // IDX images `[N, height, width]` (gray); other ranks are not drawn.
        (None, true) => match nabla_data::idx_dims(&exp.config.data.train)?[..] {
            [_, height, width] => ("images", Shown::Image([1, height, width])),
            _ => ("images", Shown::Hidden),
        },
        _ if exp.preprocessing.sequence.is_some() => ("sequences", Shown::Hidden),
        _ => ("rows", Shown::Columns),
    };
    let shown = |row: &[f64]| {
        let Some(values) = exp.preprocessing.preprocessor.inverse_transform(row) else {
            return ShownInputs::Hidden;
        };
        match how {
            Shown::Image(shape) if shape.iter().product::<usize>() == values.len() => {
                ShownInputs::Pixels {
                    shape,
                    pixels: values
                        .iter()
                        .map(|v| v.round().clamp(0.0, 255.0) as u8)
                        .collect(),
                }
            }
            Shown::Columns => decoded_columns(&exp.preprocessing.schema, &values)
                .map_or(ShownInputs::Hidden, ShownInputs::Columns),
            _ => ShownInputs::Hidden,
        }
    };
    let examples = candidates
        .iter()
        .zip(x.chunks(width.max(1)))
        .map(|(&i, row)| {
            let (truth, predicted) = values(i);
            crate::report::Mistake {
                name: names[i].clone(),
                truth,
                predicted,
                score: score(i),
                inputs: shown(row),
            }
        })
        .collect();
    Ok(crate::report::Mistakes {
        noun: noun.into(),
        examples,
        wrong,
        total: data.len(),
    })
}

/// A row's encoded values as its CSV columns: a number as it reads, a one-hot encoded column
/// as its category (the largest of its block, as imputation can leave fractions); `None`
/// when the values are not the schema's encoding.
fn decoded_columns(schema: &CsvSchema, values: &[f64]) -> Option<Vec<(String, String)>> {
    let encoded: usize = schema.features.iter().map(|f| f.width()).sum();
    if encoded != values.len() {
        return None;
    }
    let mut at = 0;
    let columns = schema
        .features
        .iter()
        .map(|f| {
            let shown = match &f.categories {
                None => crate::report::shown_number(values[at]),
                Some(categories) => {
                    let block = &values[at..at + categories.len()];
                    // (A column missing in every training row has no categories.)
                    (0..block.len())
                        .max_by(|&a, &b| block[a].total_cmp(&block[b]).then(b.cmp(&a)))
                        .map_or_else(String::new, |k| categories[k].clone())
                }
            };
            at += f.width();
            (f.name.clone(), shown)
        })
        .collect();
    Some(columns)
}

/// The split the final figures are shown on: the test data, else the validation data.
fn evaluation_split(exp: &Experiment) -> Option<(&'static str, &Dataset)> {
    match (&exp.data.test, &exp.data.valid) {
        (Some(t), _) => Some(("test", t)),
        (None, Some(v)) => Some(("validation", v)),
        (None, None) => None,
    }
}

/// The final model on the test split (or else the validation split), for the report.
pub fn evaluation(exp: &Experiment) -> Result<Option<crate::report::Evaluation>> {
    use crate::report::Evaluation;
    let Some((split, data)) = evaluation_split(exp) else {
        return Ok(None);
    };
    if let Some(text) = &exp.preprocessing.text {
        return crate::text::report_sample(&exp.model, text, data, split, exp.config.seed)
            .map(Some);
    }
    if exp.preprocessing.reconstruct {
        // A few examples, not the whole split: the grid is all the report shows of them.
        let shown = crate::autoencoder::reconstructions(
            &exp.config,
            &exp.model,
            data,
            split,
            12,
            &exp.preprocessing.schema.classes,
        )?;
        return Ok(Some(Evaluation::Reconstruction(shown)));
    }
    let out = crate::trainer::predict(&exp.model, data.x(), 256)?;
    let pred = read_outputs(&out, &exp.train_config.loss, &exp.preprocessing)?;
    let truth = data.y().to_vec_f64();
    Ok(Some(match &pred {
        Predictions::Classes {
            classes,
            probabilities,
        } => {
            let k = classes.len();
            let predicted = pred.predicted_classes();
            let mut matrix = vec![vec![0; k]; k];
            for (t, &p) in truth.iter().zip(&predicted) {
                matrix[*t as usize][p] += 1;
            }
            let mistakes = match data.names() {
                Some(names) => {
                    let wrong: Vec<usize> = (0..truth.len())
                        .filter(|&i| predicted[i] != truth[i] as usize)
                        .collect();
                    let count = Some(wrong.len());
                    let confidence = |i: usize| probabilities[i][predicted[i]];
                    Some(mistakes(
                        exp,
                        data,
                        names,
                        (wrong, count),
                        confidence,
                        |i| {
                            (
                                classes[truth[i] as usize].clone(),
                                classes[predicted[i]].clone(),
                            )
                        },
                    )?)
                }
                None => None,
            };
            Evaluation::Confusion {
                split: split.into(),
                classes: classes.clone(),
                matrix,
                mistakes,
            }
        }
        Predictions::Values(v) => {
            let (mean, std) = exp.preprocessing.target_scale.unwrap_or((0.0, 1.0));
            let split = match &exp.preprocessing.series {
                Some(s) if s.difference > 0 => {
                    format!("{split}: changes over {} steps", s.difference)
                }
                _ => split.into(),
            };
            let pairs: Vec<(f64, f64)> = truth
                .iter()
                .map(|t| t * std + mean)
                .zip(v.iter().copied())
                .collect();
            let worst = match data.names() {
                Some(names) => {
                    let error = |i: usize| (pairs[i].1 - pairs[i].0).abs();
                    let all = ((0..pairs.len()).collect(), None);
                    Some(mistakes(exp, data, names, all, error, |i| {
                        let shown = crate::report::shown_number;
                        (shown(pairs[i].0), shown(pairs[i].1))
                    })?)
                }
                None => None,
            };
            Evaluation::Regression {
                split,
                pairs,
                worst,
            }
        }
        Predictions::Reconstructions(_) => unreachable!("an autoencoder's report returns above"),
    }))
}

/// Writes (atomically) the report of the run in `dir`, for an experiment holding its final
/// weights.
pub fn write_report(dir: &Path, exp: &Experiment) -> Result<PathBuf> {
    write_report_with(dir, evaluation(exp)?)
}

/// Writes (atomically) the report of the run in `dir` from its files and the final model's
/// `evaluation`.
pub fn write_report_with(
    dir: &Path,
    evaluation: Option<crate::report::Evaluation>,
) -> Result<PathBuf> {
    let record: RunRecord = read_json(&dir.join(run_dir::HISTORY))?;
    let config_toml = std::fs::read_to_string(dir.join(run_dir::CONFIG))
        .map_err(io(&dir.join(run_dir::CONFIG)))?;
    let title = dir
        .file_name()
        .map_or("run".into(), |n| n.to_string_lossy().into_owned());
    let html = crate::report::render(&crate::report::ReportInput {
        title: &title,
        record: &record,
        config_toml: &config_toml,
        evaluation,
    })?;
    let path = dir.join(run_dir::REPORT);
    crate::checkpoint::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
