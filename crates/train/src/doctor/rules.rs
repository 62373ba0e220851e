//! From measurements to findings: each rule reads the epoch records, compares a statistic with
//! a threshold, and says what crossed it, where, why, and what to do.
//!
//! The thresholds sit far from what healthy networks show (checked on the healthy runs in the
//! tests: the digits MLP with He initialization and Adam, the XOR net, a residual net), so
//! that a finding means something.

use super::measure::{InputScale, Layer, grad_norms};
use super::{EpochDiagnostics, LayerDiagnostics};
use crate::trainer::EpochRecord;
use nabla_data::Scaling;
use serde::{Deserialize, Serialize};

/// The problems the doctor knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// A value became NaN or infinite.
    NonFinite,
    ExplodingGradients,
    VanishingGradients,
    DeadRelu,
    SaturatedUnits,
    /// Units of a layer that are all the same (all-zero or constant initialization).
    Symmetry,
    UnscaledInputs,
    /// Regression targets far from unit scale, which the output has not caught up with.
    UnscaledTargets,
    /// A recurrent layer whose error dies out on its way back to the sequence's first steps,
    /// while the network learns nothing.
    VanishingThroughTime,
    LearningRateTooLarge,
    LearningRateTooSmall,
    /// The validation loss rises while the training loss falls.
    Overfitting,
    /// A classifier of imbalanced data that answers the frequent classes and barely
    /// recognises the others.
    IgnoredClasses,
    /// A classifier that answers mostly right, but gives its wrong answers a probability so
    /// near 0 that its log loss is worse than a uniform guess's.
    Overconfidence,
    /// A GAN's discriminator rejects every sample (see [`crate::gan::doctor`]).
    DiscriminatorWins,
    /// A GAN's samples are nearly all alike.
    ModeCollapse,
    /// A GAN's samples vary but fall on only a few of the data's classes.
    PartialModeCollapse,
}

impl Problem {
    /// A short human name.
    pub fn title(self) -> &'static str {
        match self {
            Problem::NonFinite => "NaN/Inf",
            Problem::ExplodingGradients => "exploding gradients",
            Problem::VanishingGradients => "vanishing gradients",
            Problem::DeadRelu => "dead ReLUs",
            Problem::SaturatedUnits => "saturated units",
            Problem::Symmetry => "symmetric units",
            Problem::UnscaledInputs => "unscaled inputs",
            Problem::UnscaledTargets => "unscaled targets",
            Problem::VanishingThroughTime => "vanishing gradients through time",
            Problem::LearningRateTooLarge => "learning rate too large",
            Problem::LearningRateTooSmall => "learning rate too small",
            Problem::Overfitting => "overfitting",
            Problem::IgnoredClasses => "ignored classes",
            Problem::Overconfidence => "overconfident predictions",
            Problem::DiscriminatorWins => "discriminator wins",
            Problem::ModeCollapse => "mode collapse",
            Problem::PartialModeCollapse => "partial mode collapse",
        }
    }
}

/// One problem the doctor found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub problem: Problem,
    /// The layers concerned, by path (`"0"`, `"2.block.1"`); empty for the whole run.
    pub layers: Vec<String>,
    /// How the caller names those layers (config keys); the paths when it did not say.
    #[serde(default)]
    pub names: Vec<String>,
    /// What was measured, the value, and the threshold it crossed.
    pub statistic: String,
    #[serde(deserialize_with = "super::null_as_nan")]
    pub value: f64,
    #[serde(deserialize_with = "super::null_as_nan")]
    pub threshold: f64,
    /// 1-based epoch in which it was first seen.
    pub epoch: usize,
    /// The global step (0-based) at which it was seen: the failing step for NaN/Inf, the
    /// epoch's last step for what the epoch's statistics show.
    #[serde(default)]
    pub step: u64,
    /// Why it happens (the theory).
    pub cause: String,
    /// What to do about it.
    pub remedy: String,
    /// A factor for the learning rate that the remedy implies (0.1: ten times smaller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_factor: Option<f64>,
    /// The data scaling that the remedy implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// Config changes (`key=value`, as `--set` takes them) that apply the remedy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<String>,
    /// The problem this one is a consequence of: that finding's remedy is this one's too, and
    /// this one proposes no changes of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<Problem>,
}

impl Finding {
    /// A finding of `problem` first seen in epoch `epoch` (0-based), to be filled in.
    pub fn new(problem: Problem, epoch: usize) -> Finding {
        Finding {
            problem,
            layers: Vec::new(),
            names: Vec::new(),
            statistic: String::new(),
            value: 0.0,
            threshold: 0.0,
            epoch: epoch + 1,
            step: 0,
            cause: String::new(),
            remedy: String::new(),
            lr_factor: None,
            scaling: None,
            fix: Vec::new(),
            follows: None,
        }
    }

    /// What makes two findings the same (a finding is reported once).
    pub fn key(&self) -> String {
        match self.problem {
            // Problems of one layer: each layer once.
            Problem::DeadRelu | Problem::SaturatedUnits | Problem::Symmetry => {
                format!("{:?}:{}", self.problem, self.layers.join(","))
            }
            // Problems of the whole network: once, whichever layers show it.
            _ => format!("{:?}", self.problem),
        }
    }

    /// One line for the console: the problem, where, the statistic against its threshold, when.
    pub fn headline(&self) -> String {
        let names = if self.names.is_empty() {
            &self.layers
        } else {
            &self.names
        };
        let at = if names.is_empty() {
            String::new()
        } else {
            format!(" in {}", shorten(names))
        };
        let measured = if self.value.is_nan() {
            self.statistic.clone()
        } else {
            format!(
                "{} = {} (threshold {})",
                self.statistic,
                sig(self.value),
                sig(self.threshold)
            )
        };
        format!(
            "{}{at}: {measured}, epoch {} (step {})",
            self.problem.title(),
            self.epoch,
            self.step
        )
    }
}

/// `a, b, c` or `a, b, ... (N layers)`.
fn shorten(names: &[String]) -> String {
    if names.len() <= 4 {
        names.join(", ")
    } else {
        format!(
            "{}, {}, ..., {} ({} layers)",
            names[0],
            names[1],
            names[names.len() - 1],
            names.len()
        )
    }
}

/// A number in 3 significant digits.
pub fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if (1e-3..1e4).contains(&v.abs()) {
        let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.2e}")
    }
}

/// What the rules see.
pub struct RuleInput<'a> {
    pub layers: &'a [Layer],
    pub input: &'a InputScale,
    /// This epoch's record (metrics, gradient norms).
    pub current: &'a EpochRecord,
    /// This epoch's diagnostics (without findings yet).
    pub diagnostics: &'a EpochDiagnostics,
    /// The epochs before.
    pub history: &'a [EpochRecord],
    /// The run stops early and keeps its best validation epoch's weights.
    pub keeps_best: bool,
    /// How many examples the validation loss is measured on, when known.
    pub valid_examples: Option<usize>,
    /// The training rows per class (empty unless the targets are classes).
    pub class_counts: &'a [usize],
    /// The scale of a regression's training targets as the model is trained on them (`None`
    /// for classes).
    pub target: Option<&'a InputScale>,
    /// Optimizer steps taken so far (the epoch's last global step, plus one).
    pub step: u64,
}

/// Gradient norm of the first layer over the last one's below this: vanishing.
pub const VANISHING_RATIO: f64 = 1e-3;
/// ... above this: exploding.
pub const EXPLODING_RATIO: f64 = 1e3;
/// A layer's output std over the input scale above this: activations explode.
pub const EXPLODING_ACTIVATION: f64 = 1e4;
/// Fraction of ReLU units dead above this.
pub const DEAD_FRACTION: f64 = 0.5;
/// Fraction of sigmoid/tanh outputs saturated above this.
pub const SATURATED_FRACTION: f64 = 0.5;
/// Unit spread below this: the units are the same.
pub const SYMMETRY_SPREAD: f64 = 1e-6;
/// A feature's |mean| or std above this: the inputs are not scaled.
pub const UNSCALED_SCALE: f64 = 50.0;
/// Median update/weight ratio below this (ten times under the healthy 1e-3) while the loss
/// barely moves: the learning rate is too small. Healthy runs, slow ones included (the italy
/// power cells lose 4% of their loss in 5 epochs), step at 1e-3 or more.
pub const SMALL_UPDATE: f64 = 1e-4;
/// ... barely moves: after 3 epochs or more, the training loss is still above this fraction of
/// its first epoch's.
pub const SLOW_PROGRESS: f64 = 0.9;
/// Median update/weight ratio above this (two epochs running, the loss not falling): the
/// learning rate is too large.
pub const LARGE_UPDATE: f64 = 0.3;
/// The training loss above this multiple of its best so far: diverging.
pub const RISING_LOSS: f64 = 2.0;
/// Alternating loss swings, each above this fraction of the first loss: oscillating.
pub const OSCILLATION: f64 = 0.05;
/// Every validation loss of the last [`OVERFIT_WINDOW`] epochs above this multiple of the best
/// before them, the training loss lower than then: overfitting.
pub const OVERFIT_RISE: f64 = 1.2;
pub const OVERFIT_WINDOW: usize = 10;
/// A validation set smaller than this measures the loss too coarsely to tell a trend from
/// chance: the airline configs' 14 validation windows rise 20% above their best, yet stopping
/// there raises the LSTM's and GRU's test RMSE from 15.0 and 15.7 to 16.1 and 16.9 (seeds 0-4).
pub const OVERFIT_MIN_VALID: usize = 50;

/// Balanced accuracy within this fraction of the way from chance (1/K) to 1 ...
pub const IGNORED_LIFT: f64 = 0.1;
/// ... while accuracy exceeds it by at least this much (the predictions lean to the frequent
/// classes), for [`IGNORED_EPOCHS`] epochs running: the rare classes are ignored.
pub const IGNORED_GAP: f64 = 0.15;
pub const IGNORED_EPOCHS: usize = 3;

/// A regression still worse than predicting its targets' mean (training R² < 0), or explaining
/// less than [`UNSCALED_TARGET_FIT`] of their variance with outputs spread less than
/// [`UNSCALED_TARGET_SPREAD`] of theirs, for this many epochs running ...
pub const UNSCALED_TARGET_EPOCHS: usize = 3;
/// ... (the training R² below which a fit has barely started) ...
pub const UNSCALED_TARGET_FIT: f64 = 0.1;
/// ... (the outputs' standard deviation over the targets' below which the output has not
/// grown to their scale) ...
pub const UNSCALED_TARGET_SPREAD: f64 = 0.1;
/// ... with its unexplained variance `1 − R²` falling by less than this fraction over them,
/// while a target's |mean| or std is above [`UNSCALED_TARGET_SCALE`]: the output is crawling
/// toward targets far from the scale it was initialized for.
pub const UNSCALED_TARGET_CLOSING: f64 = 0.5;
/// A network's output starts at about unit scale (He or Xavier weights on standardized
/// inputs): targets this many times that are far from where it starts.
pub const UNSCALED_TARGET_SCALE: f64 = 10.0;

/// Steps taken before a network that has not learned counts as stuck rather than slow to start
/// (a small set's few batches an epoch: the italy power cells take 15 steps in 5 epochs).
pub const STUCK_STEPS: u64 = 100;
/// The share of the error a memory must keep over a whole sequence: a forget gate `σ(b)` keeps
/// `σ(b)^T` of it over `T` steps, so `b = logit(MEMORY^(1/T))` (Gers et al. 2000 started the
/// forget gate open; Jozefowicz et al. 2015 found a bias of 1 a good default).
pub const MEMORY: f64 = 0.1;

/// A classifier's log loss above this multiple of a uniform guess's (`ln K`) ...
pub const OVERCONFIDENT_LOSS: f64 = 2.0;
/// ... while its accuracy is at least this fraction of the way from chance (1/K) to 1: the
/// answers are mostly right, their probabilities are not.
pub const OVERCONFIDENT_SKILL: f64 = 0.5;
/// Seen in the first this many epochs, the cause is the step size: Adam at 100x its rate
/// inflates the weights tenfold in an epoch.
pub const OVERCONFIDENT_EARLY: usize = 5;

/// The smallest swing (relative to the first loss) when the last 4 changes of `losses`
/// alternate in sign without net progress, else `None`.
fn oscillation(losses: &[f64]) -> Option<f64> {
    let n = losses.len();
    if n < 5 {
        return None;
    }
    let w = &losses[n - 5..];
    let d: Vec<f64> = w.windows(2).map(|p| p[1] - p[0]).collect();
    let alternating = d.windows(2).all(|p| p[0] * p[1] < 0.0);
    let swing =
        d.iter().map(|x| x.abs()).fold(f64::INFINITY, f64::min) / losses[0].abs().max(1e-12);
    (alternating && swing > OSCILLATION && w[4] >= 0.95 * w[0]).then_some(swing)
}

fn finding(problem: Problem, input: &RuleInput<'_>) -> Finding {
    Finding::new(problem, input.current.epoch)
}

/// The records of the epochs before this one, then this one's.
fn epochs_so_far<'a>(input: &RuleInput<'a>) -> Vec<&'a EpochRecord> {
    input
        .history
        .iter()
        .chain(std::iter::once(input.current))
        .collect()
}

/// The training loss of each epoch so far (those that have a finite one).
fn train_losses(input: &RuleInput<'_>) -> Vec<f64> {
    epochs_so_far(input)
        .into_iter()
        .filter_map(train_loss)
        .collect()
}

/// Whether the training loss has barely moved: two epochs or more, and the last still above
/// [`SLOW_PROGRESS`] of the first (a loss that fell well below where it started has
/// converged, not stalled).
fn barely_moved(losses: &[f64]) -> bool {
    matches!((losses.first(), losses.last()),
        (Some(first), Some(now)) if losses.len() >= 2 && *now > SLOW_PROGRESS * first)
}

/// A finding of `problem` measured by the largest `max(|mean|, std)` of the columns `scale`
/// describes (`column`: `"feature"` or `"target"`, named with `kind`).
fn scale_finding(
    problem: Problem,
    input: &RuleInput<'_>,
    (kind, column): (&str, &str),
    scale: &InputScale,
    threshold: f64,
) -> Finding {
    let mut f = finding(problem, input);
    f.statistic = format!(
        "largest |mean| or std of {kind} ({column} {})",
        scale.largest_feature
    );
    f.value = scale.largest;
    f.threshold = threshold;
    f
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The median update/weight ratio over the layers with parameters.
fn median_update(d: &EpochDiagnostics) -> Option<f64> {
    median(
        d.layers
            .iter()
            .filter_map(|(_, l)| l.update_ratio)
            .collect(),
    )
}

fn train_loss(r: &EpochRecord) -> Option<f64> {
    r.train.get("loss").copied().filter(|l| l.is_finite())
}

fn valid_loss(r: &EpochRecord) -> Option<f64> {
    r.valid
        .as_ref()?
        .get("loss")
        .copied()
        .filter(|l| l.is_finite())
}

/// All findings the records support now (the doctor drops those already reported).
pub fn evaluate(input: &RuleInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    gradient_flow(input, &mut out);
    through_time(input, &mut out);
    per_layer(input, &mut out);
    inputs(input, &mut out);
    targets(input, &mut out);
    learning_rate(input, &mut out);
    overconfidence(input, &mut out);
    overfitting(input, &mut out);
    ignored_classes(input, &mut out);
    let earlier = input
        .history
        .iter()
        .filter_map(|r| r.diagnostics.as_ref())
        .flat_map(|d| &d.findings);
    let rate = earlier.chain(&out).find(|f| lowers_the_rate(f)).cloned();
    if let Some(rate) = rate {
        blame_the_rate(&mut out, &rate);
    }
    out
}

/// The findings whose remedy is a smaller learning rate because the steps are too large.
fn lowers_the_rate(f: &Finding) -> bool {
    matches!(
        f.problem,
        Problem::LearningRateTooLarge | Problem::Overconfidence
    )
}

/// Dead ReLUs in a run whose steps are too large are the steps' doing: a step that overshoots
/// drives a unit's weighted input below 0 for every example, where relu'(z) = 0 and no later
/// step can bring it back. Started at a suitable rate those units do not die, so each such
/// finding in `findings` follows `rate` (a finding that [lowers the rate](lowers_the_rate)):
/// it is told in that finding's terms and proposes no activation change of its own, which
/// would only treat the symptom.
fn blame_the_rate(findings: &mut [Finding], rate: &Finding) {
    for f in findings
        .iter_mut()
        .filter(|f| f.problem == Problem::DeadRelu && f.follows.is_none())
    {
        f.follows = Some(rate.problem);
        f.cause = format!(
            "these units died under steps that are too large ({}, epoch {}): a step that \
             overshoots drives a unit's weighted input below 0 for every example, where \
             relu'(z) = 0, and no later step can bring it back",
            rate.problem.title(),
            rate.epoch
        );
        f.remedy = format!(
            "lower the learning rate as the \"{}\" finding says: started at a suitable rate, \
             these units do not die (should they still, use Leaky ReLU or ELU)",
            rate.problem.title()
        );
        f.lr_factor = None;
        f.fix.clear();
    }
}

/// Reattributes the findings of a whole run that follow another of them (dead ReLUs after a
/// learning rate too large): a finding seen in an epoch before its cause's was reported before
/// its cause was known.
pub fn attribute(findings: &mut [Finding]) {
    if let Some(rate) = findings.iter().find(|f| lowers_the_rate(f)).cloned() {
        blame_the_rate(findings, &rate);
    }
}

/// Whether one of `problems` was found in an epoch before this one or in this one so far.
fn already_found(input: &RuleInput<'_>, out: &[Finding], problems: &[Problem]) -> bool {
    let earlier = input
        .history
        .iter()
        .filter_map(|r| r.diagnostics.as_ref())
        .flat_map(|d| &d.findings);
    out.iter()
        .chain(earlier)
        .any(|f| problems.contains(&f.problem))
}

/// The log loss of a uniform guess over a classifier's classes, `ln K` (the classes counted in
/// `class_counts`, at least two of them present); `None` when the targets are not classes.
fn uniform_guess_loss(class_counts: &[usize]) -> Option<f64> {
    (class_counts.iter().filter(|&&n| n > 0).count() >= 2).then(|| (class_counts.len() as f64).ln())
}

/// Overconfidence: the log loss `−(1/N) Σ ln p_y` of a classifier that answers mostly right is
/// dominated by the answers it gets wrong, each costing `−ln p_y`: a model that puts
/// probability `e^−50` on the right class there pays 50 nats for it. When that makes the log
/// loss [`OVERCONFIDENT_LOSS`] times a uniform guess's (`ln K`, which no trained model should
/// lose to) while the accuracy is well above chance, the logits have grown far beyond what the
/// data supports. Within a few epochs that is the step size: Adam's steps are about `lr` per
/// weight whatever the gradient, and at 0.1 the weights, and the logits with them, grow
/// tenfold in an epoch.
fn overconfidence(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    let Some(uniform) = uniform_guess_loss(input.class_counts) else {
        return;
    };
    let classes = input.class_counts.len();
    // Inputs in the thousands or weights too large make huge logits from the first step:
    // their own findings name the cause, as does one that already blamed the rate.
    let explained = [
        Problem::NonFinite,
        Problem::ExplodingGradients,
        Problem::UnscaledInputs,
        Problem::LearningRateTooLarge,
    ];
    if already_found(input, out, &explained) {
        return;
    }
    let r = input.current;
    let (metrics, split) = match &r.valid {
        Some(v) => (v, "validation split"),
        None => (&r.train, "training batches"),
    };
    let (Some(&log_loss), Some(&accuracy)) = (metrics.get("log_loss"), metrics.get("accuracy"))
    else {
        return;
    };
    let chance = 1.0 / classes as f64;
    let skilled = chance + OVERCONFIDENT_SKILL * (1.0 - chance);
    if !(log_loss.is_finite() && log_loss > OVERCONFIDENT_LOSS * uniform && accuracy >= skilled) {
        return;
    }
    let mut f = finding(Problem::Overconfidence, input);
    f.statistic = format!("log loss on the {split} / a uniform guess's (ln {classes})");
    f.value = log_loss / uniform;
    f.threshold = OVERCONFIDENT_LOSS;
    f.cause = format!(
        "the model answers {}% of the {split} right, yet its log loss is {} against {} for a \
         uniform guess: the answers it gets wrong it gives the right class a probability near \
         0, and each costs −ln p (p = e^−50 costs 50). The logits have grown far past what the \
         data supports, and its probabilities cannot be trusted; {}",
        sig(100.0 * accuracy),
        sig(log_loss),
        sig(uniform),
        if r.epoch < OVERCONFIDENT_EARLY {
            format!(
                "this early (epoch {}) that is the step size, which inflates the weights \
                 faster than the fit needs",
                r.epoch + 1
            )
        } else {
            format!(
                "after {} epochs, either the steps are still too large or the weights have \
                 grown over long training with nothing to hold them back",
                r.epoch + 1
            )
        }
    );
    f.remedy = "lower the learning rate 10x and judge the model by its validation loss, not \
                only its accuracy; if it comes only late in a long run, stop at the best \
                validation loss (train.early_stopping restores its weights) or cap the \
                confidence with loss.label_smoothing = 0.1"
        .into();
    f.lr_factor = Some(0.1);
    out.push(f);
}

/// `(accuracy, balanced accuracy)` of an epoch, on the validation split when there is one
/// (the model as it is after the epoch), else on the training batches.
fn class_scores(r: &EpochRecord) -> Option<(f64, f64)> {
    let m = r.valid.as_ref().unwrap_or(&r.train);
    Some((*m.get("accuracy")?, *m.get("balanced_accuracy")?))
}

/// Ignored classes: on imbalanced data the average loss is lowest, early on, for a model that
/// answers the frequent classes; one that stays there for [`IGNORED_EPOCHS`] epochs, with a
/// balanced accuracy (the mean of the classes' recalls) near chance while its accuracy is
/// well above it, has not learned to tell the rare classes at all.
fn ignored_classes(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    let counts = input.class_counts;
    let present = counts.iter().filter(|&&n| n > 0).count();
    let total: usize = counts.iter().sum();
    if present < 2 {
        return;
    }
    // A network that learns nothing at all has a cause of its own, reported first: class
    // weights would not help it.
    let stuck = [
        Problem::NonFinite,
        Problem::Symmetry,
        Problem::VanishingGradients,
        Problem::LearningRateTooSmall,
    ];
    if already_found(input, out, &stuck) {
        return;
    }
    let chance = 1.0 / present as f64;
    let threshold = chance + IGNORED_LIFT * (1.0 - chance);
    let ignoring = |r: &EpochRecord| {
        class_scores(r).is_some_and(|(accuracy, balanced)| {
            balanced <= threshold && accuracy - balanced >= IGNORED_GAP
        })
    };
    let records = epochs_so_far(input);
    if records.len() < IGNORED_EPOCHS
        || !records[records.len() - IGNORED_EPOCHS..]
            .iter()
            .all(|r| ignoring(r))
    {
        return;
    }
    let Some((accuracy, balanced)) = class_scores(input.current) else {
        return;
    };
    let split = if input.current.valid.is_some() {
        "validation split"
    } else {
        "training batches"
    };
    let largest = counts.iter().copied().max().unwrap_or(0);
    let rarest = counts.iter().copied().filter(|&n| n > 0).min().unwrap_or(0);
    let mut f = finding(Problem::IgnoredClasses, input);
    f.statistic =
        format!("balanced accuracy (mean recall of the {present} classes) on the {split}");
    f.value = balanced;
    f.threshold = threshold;
    f.cause = format!(
        "the largest class holds {}% of the {total} training rows (the rarest {}%): the loss \
         is an average over examples, so answering the frequent classes already lowers it, and \
         for {IGNORED_EPOCHS} epochs running the model has done little else: accuracy {} but \
         balanced accuracy {} (chance: {}), so the rare classes are barely recognised",
        sig(100.0 * largest as f64 / total as f64),
        sig(100.0 * rarest as f64 / total as f64),
        sig(accuracy),
        sig(balanced),
        sig(chance)
    );
    f.remedy = "weigh each class by the inverse of its frequency, so that the rare classes' \
                examples count as much in the loss as the frequent ones' (loss.class_weights \
                = \"balanced\" for cross_entropy, loss.pos_weight = \"balanced\" for binary \
                cross-entropy); and judge the model by balanced accuracy, recall or F1, not \
                accuracy, which a constant answer scores at the largest class's share"
        .into();
    out.push(f);
}

/// Vanishing and exploding gradients: the first layer's gradient norm against the last one's
/// (the product of the per-layer factors between them), and activations that blow up.
fn gradient_flow(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    let norms = grad_norms(input.layers, input.current);
    // Units that are all alike (zero initialization) block the gradient outright; that is
    // their own finding, not a decay through the layers.
    let symmetric = input
        .diagnostics
        .layers
        .iter()
        .any(|(_, l)| l.unit_spread.is_some_and(|s| s < SYMMETRY_SPREAD));
    if let (Some((_, first)), Some((_, last))) = (norms.first(), norms.last())
        && norms.len() >= 2
        && *last > 0.0
        && *first > 0.0
        && first.is_finite()
        && !symmetric
    {
        let ratio = first / last;
        if ratio < VANISHING_RATIO {
            let low: Vec<&(&Layer, f64)> = norms
                .iter()
                .filter(|(_, g)| g / last < VANISHING_RATIO)
                .collect();
            let mut f = finding(Problem::VanishingGradients, input);
            f.layers = low.iter().map(|(l, _)| l.path.clone()).collect();
            f.statistic = "gradient norm of the first layer / the last layer".into();
            f.value = ratio;
            f.threshold = VANISHING_RATIO;
            f.cause = format!(
                "the backpropagated error shrinks by a factor a'(z)·‖W‖ at every layer (sigmoid's \
                 derivative is at most 1/4): {} of {} layers get less than 1/1000 of the last \
                 layer's gradient, so they barely learn",
                low.len(),
                norms.len()
            );
            f.remedy = "use ReLU-family activations with He initialization (variance 2/n_in \
                        keeps the error's size from layer to layer), add BatchNorm or LayerNorm, \
                        or skip connections (residual blocks) for depth"
                .into();
            out.push(f);
        } else if ratio > EXPLODING_RATIO {
            let mut f = finding(Problem::ExplodingGradients, input);
            f.layers = norms
                .iter()
                .filter(|(_, g)| g / last > EXPLODING_RATIO)
                .map(|(l, _)| l.path.clone())
                .collect();
            f.statistic = "gradient norm of the first layer / the last layer".into();
            f.value = ratio;
            f.threshold = EXPLODING_RATIO;
            f.cause = "the backpropagated error grows by a factor a'(z)·‖W‖ > 1 at every \
                       layer: the early layers take steps thousands of times larger than the last"
                .into();
            f.remedy = "initialize with He or Xavier variance (2/n_in, 2/(n_in+n_out)), clip \
                        the gradient norm (train.clip_grad_norm = 1), lower the learning rate"
                .into();
            f.lr_factor = Some(0.1);
            out.push(f);
        }
    }
    // Activations that grow layer after layer (large initial weights).
    let scale = input.input.largest.max(1.0);
    let grown: Vec<(&String, f64)> = input
        .diagnostics
        .layers
        .iter()
        .filter(|(_, l)| l.activation_std.is_finite())
        .map(|(p, l)| (p, l.activation_std / scale))
        .filter(|(_, g)| *g > EXPLODING_ACTIVATION)
        .collect();
    if let Some(&(_, worst)) = grown.iter().max_by(|a, b| a.1.total_cmp(&b.1))
        && !out.iter().any(|f| f.problem == Problem::ExplodingGradients)
    {
        let mut f = finding(Problem::ExplodingGradients, input);
        f.layers = grown.iter().map(|(p, _)| (*p).clone()).collect();
        f.statistic = "activation std / input scale".into();
        f.value = worst;
        f.threshold = EXPLODING_ACTIVATION;
        f.cause = "each layer multiplies its input's size by about ‖W‖·√n_in: with weights too \
                   large for their fan-in the activations, and the gradients that flow back \
                   through them, grow geometrically with depth"
            .into();
        f.remedy = "initialize with He or Xavier variance (2/n_in, 2/(n_in+n_out)), clip the \
                    gradient norm (train.clip_grad_norm = 1), lower the learning rate"
            .into();
        f.lr_factor = Some(0.1);
        out.push(f);
    }
}

/// Dead ReLUs, saturated units, symmetric units: what one layer's statistics say.
fn per_layer(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    let previous = input.history.last().and_then(|r| r.diagnostics.as_ref());
    let early = input.current.epoch < 2;
    let update = median_update(input.diagnostics);
    // The model's output layer is the loss's to judge: a sigmoid or tanh output sits in its
    // tails whenever the targets do (an image autoencoder's black background, a confident
    // classifier), and that is the fit, not a stuck unit.
    let output = input.layers.last().map(|l| l.path.as_str());
    // Units all alike (zero initialization) before a ReLU make its input constant, often 0:
    // the ReLU is silent because of them, and their finding names the cure.
    let mut after_symmetric = false;
    for (path, l) in &input.diagnostics.layers {
        let was = |f: fn(&LayerDiagnostics) -> Option<f64>| {
            previous.and_then(|p| p.layer(path)).and_then(f)
        };
        if let Some(dead) = l.dead_fraction
            && dead > DEAD_FRACTION
            && !after_symmetric
            && (input.diagnostics.samples >= 2
                || was(|p| p.dead_fraction).is_some_and(|d| d > DEAD_FRACTION))
        {
            let mut f = finding(Problem::DeadRelu, input);
            f.layers = vec![path.clone()];
            f.statistic = "fraction of units zero on every sampled example".into();
            f.value = dead;
            f.threshold = DEAD_FRACTION;
            f.cause = "a ReLU unit whose input is negative for every example outputs 0 and \
                       passes no gradient (relu'(z) = 0 for z < 0), so nothing can revive it: a \
                       large negative bias or a too-large step pushed these units there"
                .into();
            f.remedy = "use Leaky ReLU or ELU (a small slope below 0 keeps the gradient alive), \
                        start biases at zero with He initialization, and lower the learning \
                        rate if the updates are large"
                .into();
            if update.is_some_and(|u| u > 1e-2) {
                f.lr_factor = Some(0.1);
            }
            out.push(f);
        }
        if let Some(sat) = l.saturated_fraction
            && sat > SATURATED_FRACTION
            && early
            && output != Some(path.as_str())
        {
            let mut f = finding(Problem::SaturatedUnits, input);
            f.layers = vec![path.clone()];
            f.statistic = format!("fraction of {} outputs in the flat tails", l.kind);
            f.value = sat;
            f.threshold = SATURATED_FRACTION;
            f.cause = format!(
                "{} is flat far from 0 (derivative below 2% of its peak there): inputs this \
                 large make the layer pass almost no gradient back",
                l.kind
            );
            let (scaling, scale) = input.input.suited_scaling();
            f.scaling = Some(scaling);
            f.remedy = format!(
                "{scale}, initialize the layer before it with Xavier variance (keeps z in the \
                 curved middle), or put BatchNorm/LayerNorm before the activation"
            );
            out.push(f);
        }
        if let Some(spread) = l.unit_spread
            && spread < SYMMETRY_SPREAD
        {
            after_symmetric = true;
            let mut f = finding(Problem::Symmetry, input);
            f.layers = vec![path.clone()];
            f.statistic = "spread between the layer's units (weight rows or filters)".into();
            f.value = spread;
            f.threshold = SYMMETRY_SPREAD;
            f.cause = "units with identical weights compute identical outputs and receive \
                       identical gradients, so they stay identical: the layer has one unit's \
                       worth of capacity (all-zero or constant initialization)"
                .into();
            f.remedy =
                "initialize the weights randomly: He (ReLU) or Xavier (sigmoid, tanh)".into();
            out.push(f);
        }
    }
}

/// Unscaled inputs: measured on the training data, reported at the first epoch.
fn inputs(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    if input.current.epoch != 0 {
        return;
    }
    let s = input.input;
    // Only the magnitude triggers: a ratio of stds alone also flags healthy data whose
    // near-constant features (MNIST's border pixels) have tiny spreads.
    if s.largest <= UNSCALED_SCALE {
        return;
    }
    let mut f = scale_finding(
        Problem::UnscaledInputs,
        input,
        ("an input feature", "feature"),
        s,
        UNSCALED_SCALE,
    );
    f.scaling = Some(s.suited_scaling().0);
    if s.are_pixels() {
        f.cause = format!(
            "pixel intensities as read (0 to {}) are 255 times the size of pixels in [0, 1], \
             and the loss surface's curvature grows with the inputs' second moments (the \
             Hessian of a linear layer), 255² times: a learning rate small enough not to \
             diverge crawls, and large inputs saturate sigmoid/tanh units",
            sig(s.max)
        );
        f.remedy = "divide the pixel intensities by 255 (data.scaling = { divide = 255 }: every \
                    pixel in [0, 1], black stays 0); standardizing each pixel on its own would \
                    turn the rare strokes of a pixel that is almost always black (a tiny std) \
                    into inputs in the hundreds"
            .into();
    } else {
        f.cause = format!(
            "features on very different scales make the loss a long narrow valley (the Hessian \
             of a linear layer scales with the inputs' second moments; here the feature stds \
             differ by a factor of {}): a step small enough for the steepest direction crawls \
             along the others, and large inputs saturate sigmoid/tanh units",
            sig(s.std_ratio)
        );
        f.remedy = "standardize the features (data.scaling = \"standardize\": zero mean, unit \
                    variance, fitted on the training split)"
            .into();
    }
    out.push(f);
}

/// The forget-gate bias that keeps [`MEMORY`] of a cell's state over `steps` steps.
pub fn forget_bias_for(steps: usize) -> f64 {
    let keep = MEMORY.powf(1.0 / steps.max(1) as f64);
    (keep / (1.0 - keep)).ln()
}

/// Vanishing gradients through time: the error enters a last-step recurrent layer at the last
/// step and flows back through `∂h_t/∂h_{t−1} = diag(a′)·W_h` at every step (an LSTM's cell
/// through its forget gate `f_t`): a product of `T` factors below 1 leaves the first steps
/// almost none of it, and whatever the label depends on there cannot be learned. Reported
/// when the first step gets less than [`VANISHING_RATIO`] of the error of the step that gets
/// the most while, after [`STUCK_STEPS`] steps, the training loss is still above
/// [`SLOW_PROGRESS`] of its first epoch's. A cell that learns with a small ratio (the task
/// leans on the last steps) is not reported.
fn through_time(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    if !barely_moved(&train_losses(input)) || input.step < STUCK_STEPS {
        return;
    }
    for (path, l) in &input.diagnostics.layers {
        let (Some(ratio), Some(steps)) = (l.first_step_gradient, l.steps) else {
            continue;
        };
        if ratio >= VANISHING_RATIO {
            continue;
        }
        let bias = forget_bias_for(steps);
        let mut f = finding(Problem::VanishingThroughTime, input);
        f.layers = vec![path.clone()];
        f.statistic = format!("error reaching the first of {steps} steps / the most at any step");
        f.value = ratio;
        f.threshold = VANISHING_RATIO;
        f.cause = format!(
            "the error enters at the last step and flows back through the recurrence, \
             multiplied at every step by a factor below 1 ({}): the first steps get {} of it, \
             so nothing the target depends on there can be learned, and the loss sits where \
             it started",
            match l.kind.as_str() {
                "LSTM" => "the forget gate σ(b_f + ...), 0.5 at a zero bias",
                "GRU" => "the update gate's and tanh's derivatives times the recurrent weights",
                _ => "the activation's derivative times the recurrent weights",
            },
            sig(ratio)
        );
        let gated = matches!(l.kind.as_str(), "LSTM" | "GRU");
        f.remedy = format!(
            "{}: a bias of {bias:.1} (forget_bias) keeps a tenth of the state over {steps} steps \
             (σ(b)^{steps} = 0.1), so that the error reaches the start; or shorten the sequences",
            match l.kind.as_str() {
                "LSTM" => "start the forget gate open",
                "GRU" => "start the update gate, which keeps σ(b) of the state per step, open",
                _ => {
                    "use an LSTM, whose cell state flows back through its forget gate's own \
                     factor instead of the activation's derivative times the weights (a GRU \
                     works too), and start that gate open"
                }
            },
        );
        // The changes, in config terms (`model.layers[1]`), for a top-level layer. A plain RNN
        // becomes an LSTM: on data/long_memory, at bias 2.8, its loss falls 30% in the 5-epoch
        // probe (the GRU's 6%), though after 30 epochs the GRU reached 0.988 test accuracy
        // and the LSTM 0.969 (seeds 0-4).
        let key = super::fixes::config_key(path);
        if !gated {
            f.fix.push(format!("{key}.type=\"lstm\""));
        }
        f.fix.push(format!("{key}.forget_bias={bias:.1}"));
        out.push(f);
    }
}

/// Unscaled targets: a network's output starts near 0, its weights initialized for outputs of
/// unit scale. Targets of mean 150 leave the loss dominated by that offset, and the output
/// crawls toward it: an adaptive optimizer (Adam, RMSprop) moves each weight by about `lr` per
/// step, and plain gradient descent's gradient `2(f − y)` is target-sized, so a rate stable for
/// it is too small for the rest. Seen as a training R² below 0 (worse than predicting the
/// targets' mean) for [`UNSCALED_TARGET_EPOCHS`] epochs, the unexplained variance `1 − R²`
/// closing by less than [`UNSCALED_TARGET_CLOSING`] over them. A linear model trained by
/// gradient descent learns as fast at any target scale (its problem is linear in y): it
/// closes the gap within those epochs and is not reported.
fn targets(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    let Some(target) = input.target.filter(|t| t.largest > UNSCALED_TARGET_SCALE) else {
        return;
    };
    // Unscaled inputs are reported first: an autoencoder's targets are its inputs, and inputs
    // in the thousands stall the output on their own.
    if already_found(input, out, &[Problem::UnscaledInputs, Problem::NonFinite]) {
        return;
    }
    let records = epochs_so_far(input);
    let Some(window) = records.len().checked_sub(UNSCALED_TARGET_EPOCHS) else {
        return;
    };
    let Some(unexplained) = records[window..]
        .iter()
        .map(|r| r.train.get("r2").map(|r2| 1.0 - r2))
        .collect::<Option<Vec<f64>>>()
    else {
        return;
    };
    let (first, last) = (unexplained[0], unexplained[unexplained.len() - 1]);
    let worse_than_mean = unexplained.iter().all(|u| *u > 1.0);
    // Targets of mean 0 and a large spread: predicting about 0 is as good as their mean, so
    // R² sits just above 0 while the output, spread about as its initialization made it,
    // grows toward theirs at the optimizer's pace.
    let output_spread = input
        .diagnostics
        .layers
        .last()
        .map(|(_, l)| l.activation_std)
        .filter(|s| s.is_finite());
    let narrow = output_spread.filter(|s| *s < UNSCALED_TARGET_SPREAD * target.largest_std);
    let unfit = unexplained.iter().all(|u| *u > 1.0 - UNSCALED_TARGET_FIT) && narrow.is_some();
    if !((worse_than_mean || unfit) && last > (1.0 - UNSCALED_TARGET_CLOSING) * first) {
        return;
    }
    // About as good as the mean (|R²| small): the spread is what is missing, not an offset.
    let near_mean = unexplained
        .iter()
        .all(|u| (u - 1.0).abs() < UNSCALED_TARGET_FIT);
    let mut f = scale_finding(
        Problem::UnscaledTargets,
        input,
        ("a training target", "target"),
        target,
        UNSCALED_TARGET_SCALE,
    );
    let epoch = input.current.epoch + 1;
    let r2 = format!(
        "training R² {} at epoch {epoch}, {} at epoch {}",
        sig(1.0 - last),
        sig(1.0 - first),
        epoch + 1 - UNSCALED_TARGET_EPOCHS,
    );
    let behind = match narrow {
        Some(spread) if near_mean => format!(
            "after {epoch} epochs the predictions spread with a standard deviation of {} \
             against the targets' {} and explain almost none of their variance ({r2})",
            sig(spread),
            sig(target.largest_std),
        ),
        _ => format!(
            "after {epoch} epochs the predictions are still worse than the targets' mean \
             ({r2}), and the loss is dominated by the offset"
        ),
    };
    f.cause = format!(
        "the output starts near 0, its weights initialized for outputs of unit scale, but the \
         targets are of scale {}: {behind}. Adam-like optimizers move each weight by about lr \
         per step, and plain gradient descent's gradient 2(f − y) is target-sized, so a rate \
         stable for it is too small for the other weights",
        sig(target.largest),
    );
    f.remedy = "standardize the target (data.scale_target = true): the model learns z-scores, \
                and its predictions and metrics are mapped back to the target's units"
        .into();
    out.push(f);
}

/// Overfitting: for [`OVERFIT_WINDOW`] epochs, not one validation loss came within
/// [`OVERFIT_RISE`] of the best before them, while the training loss went below its value
/// then. This is Prechelt's generalization loss `GL = E_va / E_opt − 1` ("Early stopping — but
/// when?", 1998) taken at the window's best epoch. The best of a window only rises with the
/// trend, not with the swings of a small validation set.
fn overfitting(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    // Early stopping that restores the best weights is the remedy already applied; a tiny
    // validation set cannot tell a trend from chance.
    if input.keeps_best || input.valid_examples.is_some_and(|n| n < OVERFIT_MIN_VALID) {
        return;
    }
    let records = epochs_so_far(input);
    let (Some(valid), Some(train)) = (
        records
            .iter()
            .map(|r| valid_loss(r))
            .collect::<Option<Vec<f64>>>(),
        records
            .iter()
            .map(|r| train_loss(r))
            .collect::<Option<Vec<f64>>>(),
    ) else {
        return;
    };
    let Some(Overfit {
        best,
        start,
        recent,
    }) = overfit(&valid, &train)
    else {
        return;
    };
    let (w, best_loss) = (OVERFIT_WINDOW, valid[best]);
    // 1-based epoch numbers, as the records count them (a resumed run's history included).
    let epoch = |i: usize| records[i].epoch + 1;
    let mut f = finding(Problem::Overfitting, input);
    f.statistic = format!(
        "lowest validation loss of epochs {}-{} over the best before them (epoch {})",
        epoch(start),
        epoch(records.len() - 1),
        epoch(best)
    );
    f.value = recent / best_loss;
    f.threshold = OVERFIT_RISE;
    f.cause = format!(
        "the training loss went on falling ({} at epoch {}, {} now) while the validation loss \
         has not come back within {}% of its best ({} at epoch {}; at least {} in the last {w} \
         epochs): the model is fitting what is particular to its training examples, their \
         noise included, not what carries over to new data",
        sig(train[best]),
        epoch(best),
        sig(train[train.len() - 1]),
        sig((OVERFIT_RISE - 1.0) * 100.0),
        sig(best_loss),
        epoch(best),
        sig(recent)
    );
    let images = if input.input.pixels {
        "; augment the images (random_translation, random_rotation, random_zoom or random_flip \
         layers after the reshape), so that each epoch sees new variants of them"
    } else {
        ""
    };
    f.remedy = format!(
        "stop at the best validation epoch and keep its weights (train.early_stopping = \
         {{ patience = 5 }}, which restores them); regularize: an L2 penalty on the weights \
         (train.l2 = 1e-4) or dropout before the wide layers{images}; or a smaller model, or \
         more training data"
    );
    out.push(f);
}

/// Where [`overfit`] found the validation loss stuck above its best.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Overfit {
    /// The epoch (0-based) of the best validation loss before the window.
    best: usize,
    /// The window's first epoch.
    start: usize,
    /// The window's lowest validation loss.
    recent: f64,
}

/// The overfitting test on per-epoch losses (see [`overfitting`]).
fn overfit(valid: &[f64], train: &[f64]) -> Option<Overfit> {
    let w = OVERFIT_WINDOW;
    if valid.len() <= w || train.len() != valid.len() {
        return None;
    }
    let start = valid.len() - w;
    let lowest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (best, best_loss) = valid[..start]
        .iter()
        .copied()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let recent = lowest(&valid[start..]);
    // The rise must also be large against the loss's own scale (1% of the first validation
    // loss): a validation loss near 0 doubles on noise.
    let rose = recent > OVERFIT_RISE * best_loss && recent - best_loss > 0.01 * valid[0];
    let trained_on = lowest(&train[start..]) < train[best];
    (rose && trained_on).then_some(Overfit {
        best,
        start,
        recent,
    })
}

/// A learning rate far from the loss surface's scale: steps that barely move the weights while
/// the loss stalls, or a loss that rises.
fn learning_rate(input: &RuleInput<'_>, out: &mut Vec<Finding>) {
    let update = median_update(input.diagnostics);
    let losses = train_losses(input);
    // Tiny updates behind vanishing gradients or units all alike (whose zeros block the
    // gradient) are their fault, not the rate's.
    let blocked = already_found(
        input,
        out,
        &[Problem::VanishingGradients, Problem::Symmetry],
    );
    if let Some(u) = update
        && u < SMALL_UPDATE
        && losses.len() >= 3
        && !blocked
    {
        let (first, now) = (losses[0], losses[losses.len() - 1]);
        if barely_moved(&losses) {
            let mut f = finding(Problem::LearningRateTooSmall, input);
            f.statistic = "median update / weight ratio per step".into();
            f.value = u;
            f.threshold = SMALL_UPDATE;
            // Aim for the usual 1e-3 per step, in whole powers of ten.
            let factor = 10f64.powf((1e-3 / u).log10().floor().clamp(1.0, 4.0));
            f.cause = format!(
                "each step changes the weights by {} of their size (healthy training: about \
                 1e-3), and in {} epochs the loss fell {}% from its first epoch's: a plateau \
                 made by the step size",
                sig(u),
                losses.len(),
                sig(100.0 * (first - now) / first.abs().max(1e-12))
            );
            f.remedy = format!(
                "raise the learning rate about {}x (or use an adaptive optimizer such as Adam, \
                 whose steps do not shrink with the gradient)",
                sig(factor)
            );
            f.lr_factor = Some(factor);
            out.push(f);
        }
    }
    let previous = input
        .history
        .last()
        .and_then(|r| r.diagnostics.as_ref())
        .and_then(median_update);
    let best = losses
        .iter()
        .take(losses.len().saturating_sub(1))
        .copied()
        .reduce(f64::min);
    // Climbing back: well above its best and at least halfway back to where it started (a
    // blip at a loss near 0 is noise, not divergence).
    let rising = matches!((losses.last(), best, losses.first()),
        (Some(now), Some(b), Some(start)) if *now > RISING_LOSS * b && *now > 0.5 * start);
    // Large steps while the loss still falls are fine (small weights early on).
    let not_falling = losses.len() >= 2 && losses[losses.len() - 1] >= losses[losses.len() - 2];
    let large = update.is_some_and(|u| u > LARGE_UPDATE)
        && previous.is_some_and(|u| u > LARGE_UPDATE)
        && not_falling;
    // Oscillating: the last 4 epoch-to-epoch changes alternate in sign, each swing a sizable
    // part of the starting loss, and no net progress over them.
    let swing = oscillation(&losses);
    // Worse than guessing on the very examples it trains on: a classifier whose training log
    // loss is a multiple of a uniform guess's. Huge logits from unscaled inputs or weights too
    // large do that from the first step, whatever the rate: their findings say so.
    let explained = already_found(
        input,
        out,
        &[Problem::UnscaledInputs, Problem::ExplodingGradients],
    );
    let guessing = uniform_guess_loss(input.class_counts)
        .zip(input.current.train.get("log_loss"))
        .map(|(uniform, log_loss)| log_loss / uniform)
        .filter(|ratio| *ratio > OVERCONFIDENT_LOSS && !explained);
    if rising || large || swing.is_some() || guessing.is_some() {
        let mut f = finding(Problem::LearningRateTooLarge, input);
        if let Some(ratio) = guessing {
            f.statistic = format!(
                "training log loss / a uniform guess's (ln {})",
                input.class_counts.len()
            );
            f.value = ratio;
            f.threshold = OVERCONFIDENT_LOSS;
        } else if let (false, Some(swing)) = (rising, swing) {
            f.statistic =
                "smallest of 4 alternating epoch-to-epoch loss swings / the first loss".into();
            f.value = swing;
            f.threshold = OSCILLATION;
        } else if rising {
            f.statistic = "training loss / its best so far".into();
            f.value = losses.last().copied().unwrap_or(f64::NAN) / best.unwrap_or(f64::NAN);
            f.threshold = RISING_LOSS;
        } else {
            f.statistic = "median update / weight ratio per step".into();
            f.value = update.unwrap_or(f64::NAN);
            f.threshold = LARGE_UPDATE;
        }
        f.cause = if guessing.is_some() {
            "on the very examples it trains on, the model does worse than a uniform guess: \
             steps larger than the loss surface's curvature allows throw the weights past the \
             minimum, and the logits they blow up make confident mistakes"
        } else {
            "steps larger than the loss surface's curvature allows overshoot the minimum: the \
             loss oscillates or climbs"
        }
        .into();
        f.remedy = "lower the learning rate 10x, add gradient clipping \
                    (train.clip_grad_norm = 1), or use a schedule that decays it"
            .into();
        f.lr_factor = Some(0.1);
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alternating_loss_without_progress_oscillates() {
        // A 2-cycle around 1.0 from a start of 2.0: swings of 0.4, no progress.
        let cycle = [2.0, 1.2, 0.8, 1.2, 0.8, 1.2];
        assert!((oscillation(&cycle).unwrap() - 0.2).abs() < 1e-12);
        // Falling with noise is not oscillating, nor are tiny swings near the end of training.
        assert_eq!(oscillation(&[2.0, 1.5, 1.6, 1.1, 1.2, 0.8]), None);
        assert_eq!(oscillation(&[2.0, 0.10, 0.11, 0.10, 0.11, 0.10]), None);
        // Too few epochs to tell.
        assert_eq!(oscillation(&[2.0, 1.0, 2.0, 1.0]), None);
    }

    /// The first epoch at which [`overfit`] fires on the losses so far, if any.
    fn fires_at(valid: &[f64], train: &[f64]) -> Option<usize> {
        (1..=valid.len()).find(|&n| overfit(&valid[..n], &train[..n]).is_some())
    }

    #[test]
    fn a_validation_loss_that_stays_above_its_best_is_overfitting() {
        // The textbook U: validation falls to 0.5 at epoch 10 (0-based 9), then rises 3% an
        // epoch while the training loss keeps falling.
        let valid: Vec<f64> = (0..40)
            .map(|e| {
                if e < 10 {
                    1.0 - 0.05 * (e + 1) as f64
                } else {
                    0.5 * 1.03f64.powi(e - 9)
                }
            })
            .collect();
        let train: Vec<f64> = (0..40).map(|e| 1.0 / (1.0 + e as f64)).collect();
        // Every loss of a 10-epoch window above 1.2 × 0.5: from epoch 0-based 16 (0.5 · 1.03⁷
        // = 0.615) on, so the first window that qualifies ends at epoch 25 (0-based).
        let n = fires_at(&valid, &train).unwrap();
        assert_eq!(n, 26);
        let found = overfit(&valid[..n], &train[..n]).unwrap();
        assert_eq!((found.best, found.start), (9, 16));
        assert!((found.recent - 0.5 * 1.03f64.powi(7)).abs() < 1e-12);
    }

    #[test]
    fn swings_divergence_and_tiny_losses_are_not_overfitting() {
        let falling: Vec<f64> = (0..60).map(|e| 1.0 / (1.0 + e as f64)).collect();
        // A small validation set's swings: ±25% around a flat level, period 10 epochs.
        let swinging: Vec<f64> = (0..60)
            .map(|e| 0.6 * (1.0 + 0.25 * (e as f64 * std::f64::consts::TAU / 10.0).sin()))
            .collect();
        assert_eq!(fires_at(&swinging, &falling), None);
        // Both losses rising: the training diverges, it does not overfit.
        let rising: Vec<f64> = (0..60).map(|e| 0.5 * 1.05f64.powi(e)).collect();
        assert_eq!(fires_at(&rising, &rising), None);
        // A validation loss near 0 that doubles: below 1% of the first loss.
        let mut tiny = vec![0.7];
        tiny.extend((1..60).map(|e| if e < 20 { 1e-4 } else { 2e-4 }));
        assert_eq!(fires_at(&tiny, &falling), None);
        // Too few epochs for a window after the best.
        assert_eq!(fires_at(&[1.0, 0.5, 2.0, 2.0], &[1.0, 0.5, 0.2, 0.1]), None);
    }

    /// An epoch whose validation split scored `accuracy` and `balanced` accuracy.
    fn scored(epoch: usize, accuracy: f64, balanced: f64) -> EpochRecord {
        let metrics = |loss: f64| {
            [
                ("loss".to_string(), loss),
                ("accuracy".to_string(), accuracy),
                ("balanced_accuracy".to_string(), balanced),
            ]
            .into_iter()
            .collect()
        };
        EpochRecord {
            epoch,
            learning_rate: 1e-3,
            train: metrics(0.5 - 0.01 * epoch as f64),
            valid: Some(metrics(0.5)),
            grad_norm: 1.0,
            layer_grad_norms: Default::default(),
            diagnostics: None,
            samples: None,
        }
    }

    /// The ignored-classes findings for the epochs `scores` (accuracy, balanced accuracy) of a
    /// classifier with `counts` training rows per class, at the last epoch.
    fn ignored(counts: &[usize], scores: &[(f64, f64)]) -> Vec<Finding> {
        ignored_after(counts, scores, None)
    }

    /// [`ignored`], with `earlier` reported in the first epoch.
    fn ignored_after(
        counts: &[usize],
        scores: &[(f64, f64)],
        earlier: Option<Problem>,
    ) -> Vec<Finding> {
        let mut records: Vec<EpochRecord> = scores
            .iter()
            .enumerate()
            .map(|(e, &(a, b))| scored(e, a, b))
            .collect();
        if let Some(problem) = earlier {
            records[0].diagnostics = Some(EpochDiagnostics {
                findings: vec![Finding::new(problem, 0)],
                ..Default::default()
            });
        }
        apply(ignored_classes, &records, counts, None)
    }

    /// What `rule` finds at the last of `records`, a classifier's with `counts` training rows
    /// per class or a regression's with targets of scale `target` (no layers, unscaled
    /// inputs, nothing sampled).
    fn apply(
        rule: fn(&RuleInput<'_>, &mut Vec<Finding>),
        records: &[EpochRecord],
        counts: &[usize],
        target: Option<&InputScale>,
    ) -> Vec<Finding> {
        apply_at(
            rule,
            records,
            counts,
            target,
            &EpochDiagnostics::default(),
            0,
        )
    }

    /// [`apply`] with this epoch's per-layer `diagnostics`, after `step` steps.
    fn apply_at(
        rule: fn(&RuleInput<'_>, &mut Vec<Finding>),
        records: &[EpochRecord],
        counts: &[usize],
        target: Option<&InputScale>,
        diagnostics: &EpochDiagnostics,
        step: u64,
    ) -> Vec<Finding> {
        let (current, history) = records.split_last().unwrap();
        let input = RuleInput {
            layers: &[],
            input: &InputScale::default(),
            current,
            diagnostics,
            history,
            keeps_best: false,
            valid_examples: None,
            class_counts: counts,
            target,
            step,
        };
        let mut out = Vec::new();
        rule(&input, &mut out);
        out
    }

    #[test]
    fn a_classifier_stuck_on_the_frequent_class_ignores_the_rare_ones() {
        let stuck = (0.9, 0.5);
        // Three epochs running at chance while accuracy is the majority's share.
        let f = ignored(&[10, 90], &[stuck, stuck, stuck]);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].value, f[0].threshold, f[0].epoch), (0.5, 0.55, 3));
        assert!(
            f[0].cause
                .contains("90.0% of the 100 training rows (the rarest 10.0%)"),
            "{}",
            f[0].cause
        );
        // Two epochs are not yet a pattern; a climb out of it in the last epoch is learning.
        assert!(ignored(&[10, 90], &[stuck, stuck]).is_empty());
        assert!(ignored(&[10, 90], &[stuck, stuck, (0.92, 0.62)]).is_empty());
        // Ten classes: chance is 0.1, the threshold 0.19.
        let ten = [5, 5, 5, 5, 5, 5, 5, 5, 5, 55];
        assert_eq!(ignored(&ten, &[(0.6, 0.18); 3]).len(), 1);
        assert!(ignored(&ten, &[(0.6, 0.2); 3]).is_empty());
        // At chance on balanced data (accuracy as low): not learning, but not from imbalance.
        assert!(ignored(&[50, 50], &[(0.5, 0.5); 3]).is_empty());
        // Regression (no class counts) or one class only: nothing to say.
        assert!(ignored(&[], &[stuck; 3]).is_empty());
        assert!(ignored(&[0, 100], &[stuck; 3]).is_empty());
        // A network that learns nothing for a cause of its own is told that cause instead.
        let plateau = Some(Problem::LearningRateTooSmall);
        assert!(ignored_after(&[10, 90], &[stuck; 3], plateau).is_empty());
        let overfit = Some(Problem::Overfitting);
        assert_eq!(ignored_after(&[10, 90], &[stuck; 3], overfit).len(), 1);
    }

    /// The overconfidence findings of a classifier with `counts` training rows per class whose
    /// last epoch (0-based `epoch`) scored `log_loss` and `accuracy` on its validation split (on
    /// its training batches when `valid` is false), after `earlier` was reported.
    fn overconfident(
        counts: &[usize],
        epoch: usize,
        scores: (f64, f64),
        valid: bool,
        earlier: Option<Problem>,
    ) -> Vec<Finding> {
        judged(overconfidence, counts, epoch, scores, valid, earlier)
    }

    /// What `rule` finds in the epochs [`overconfident`] describes.
    fn judged(
        rule: fn(&RuleInput<'_>, &mut Vec<Finding>),
        counts: &[usize],
        epoch: usize,
        (log_loss, accuracy): (f64, f64),
        valid: bool,
        earlier: Option<Problem>,
    ) -> Vec<Finding> {
        let metrics: std::collections::BTreeMap<String, f64> = [
            ("loss".to_string(), log_loss),
            ("log_loss".to_string(), log_loss),
            ("accuracy".to_string(), accuracy),
        ]
        .into_iter()
        .collect();
        // The epoch before scored the same: no rise or fall for the loss trend's tests to see.
        let mut previous = scored(0, accuracy, accuracy);
        previous.train = metrics.clone();
        if let Some(problem) = earlier {
            previous.diagnostics = Some(EpochDiagnostics {
                findings: vec![Finding::new(problem, 0)],
                ..Default::default()
            });
        }
        let mut current = scored(epoch, accuracy, accuracy);
        current.train = metrics.clone();
        current.valid = valid.then_some(metrics);
        apply(rule, &[previous, current], counts, None)
    }

    #[test]
    fn a_mostly_right_classifier_with_a_log_loss_worse_than_guessing_is_overconfident() {
        let ten = [10; 10];
        let ln10 = 10f64.ln();
        // The digits at Adam's lr = 0.1 after one epoch: 83% right, log loss 10.7.
        let f = overconfident(&ten, 0, (10.7, 0.83), true, None);
        assert_eq!(f.len(), 1);
        assert!((f[0].value - 10.7 / ln10).abs() < 1e-12);
        assert_eq!(
            (f[0].threshold, f[0].epoch, f[0].lr_factor),
            (2.0, 1, Some(0.1))
        );
        assert!(
            f[0].statistic.contains("validation split"),
            "{}",
            f[0].statistic
        );
        assert!(
            f[0].cause.contains("this early (epoch 1)"),
            "{}",
            f[0].cause
        );
        // Just under twice ln 10, or right too rarely for the confidence to be the fault.
        assert!(overconfident(&ten, 0, (1.99 * ln10, 0.9), true, None).is_empty());
        assert!(overconfident(&ten, 0, (10.7, 0.54), true, None).is_empty());
        assert_eq!(overconfident(&ten, 0, (10.7, 0.55), true, None).len(), 1);
        // Two classes: ln 2 = 0.69, and accuracy must reach 0.75.
        assert_eq!(overconfident(&[40, 60], 0, (1.4, 0.8), true, None).len(), 1);
        assert!(overconfident(&[40, 60], 0, (1.4, 0.7), true, None).is_empty());
        assert!(overconfident(&[40, 60], 0, (1.3, 0.8), true, None).is_empty());
        // Without a validation split the training batches are judged.
        let f = overconfident(&ten, 0, (10.7, 0.83), false, None);
        assert!(
            f[0].statistic.contains("training batches"),
            "{}",
            f[0].statistic
        );
        // Late in a run the cause is not pinned on the steps alone.
        let f = overconfident(&ten, 40, (10.7, 0.83), true, None);
        assert!(f[0].cause.contains("after 41 epochs"), "{}", f[0].cause);
        // Regression, one class, a NaN loss: nothing to say.
        assert!(overconfident(&[], 0, (10.7, 0.83), true, None).is_empty());
        assert!(overconfident(&[0, 100], 0, (10.7, 0.83), true, None).is_empty());
        assert!(overconfident(&ten, 0, (f64::NAN, 0.83), true, None).is_empty());
        // Huge logits with a cause of their own are told that cause instead; an unrelated
        // earlier finding does not hide it.
        for cause in [Problem::UnscaledInputs, Problem::LearningRateTooLarge] {
            assert!(overconfident(&ten, 1, (10.7, 0.83), true, Some(cause)).is_empty());
        }
        let dead = Some(Problem::DeadRelu);
        assert_eq!(overconfident(&ten, 1, (10.7, 0.83), true, dead).len(), 1);
    }

    #[test]
    fn a_training_log_loss_worse_than_guessing_is_a_learning_rate_too_large() {
        let ten = [10; 10];
        let ln10 = 10f64.ln();
        // The digits at Adam's lr = 0.3: a training log loss of 21.3 after one epoch. The
        // validation split is not read (`valid` false: the same scores on the training
        // batches), nor is the accuracy.
        for accuracy in [0.77, 0.1] {
            let f = judged(learning_rate, &ten, 0, (21.3, accuracy), false, None);
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].problem, Problem::LearningRateTooLarge);
            assert!((f[0].value - 21.3 / ln10).abs() < 1e-12);
            assert_eq!((f[0].threshold, f[0].lr_factor), (2.0, Some(0.1)));
            assert!(f[0].statistic.contains("ln 10"), "{}", f[0].statistic);
        }
        assert!(judged(learning_rate, &ten, 0, (1.99 * ln10, 0.5), false, None).is_empty());
        // Huge logits from inputs in the thousands or oversized weights are theirs to explain.
        for cause in [Problem::UnscaledInputs, Problem::ExplodingGradients] {
            let f = judged(learning_rate, &ten, 1, (21.3, 0.5), false, Some(cause));
            assert!(f.is_empty(), "{cause:?}: {f:?}");
        }
        // Regression has no uniform guess to compare with.
        assert!(judged(learning_rate, &[], 0, (21.3, 0.5), false, None).is_empty());
    }

    /// The unscaled-target findings at the last of the epochs whose training R² is `r2`, for
    /// targets of scale `scale` (max of |mean| and std), after `earlier` was reported.
    fn unscaled_target(scale: f64, r2: &[f64], earlier: Option<Problem>) -> Vec<Finding> {
        let target = InputScale {
            largest: scale,
            ..Default::default()
        };
        unscaled_target_spread(&target, None, r2, earlier)
    }

    /// [`unscaled_target`] for targets `target`, the model's output spread with standard
    /// deviation `output_std` in the last epoch.
    fn unscaled_target_spread(
        target: &InputScale,
        output_std: Option<f64>,
        r2: &[f64],
        earlier: Option<Problem>,
    ) -> Vec<Finding> {
        let mut records: Vec<EpochRecord> = r2
            .iter()
            .enumerate()
            .map(|(e, &r2)| {
                let mut r = scored(e, 0.0, 0.0);
                r.train = [("loss".to_string(), 1.0 - r2), ("r2".to_string(), r2)]
                    .into_iter()
                    .collect();
                r.valid = None;
                r
            })
            .collect();
        if let Some(problem) = earlier {
            records[0].diagnostics = Some(EpochDiagnostics {
                findings: vec![Finding::new(problem, 0)],
                ..Default::default()
            });
        }
        let output = output_std.map(|std| {
            let layer = LayerDiagnostics {
                kind: "Linear".into(),
                activation_std: std,
                ..Default::default()
            };
            ("2".to_string(), layer)
        });
        let diagnostics = EpochDiagnostics {
            layers: output.into_iter().collect(),
            ..Default::default()
        };
        apply_at(targets, &records, &[], Some(target), &diagnostics, 0)
    }

    #[test]
    fn an_output_far_narrower_than_centred_targets_means_unscaled_targets() {
        // The diabetes progression centred and times 10 (mean 0, std 777), an MLP at Adam's
        // 1e-3: R² 0.0008, 0.0012, 0.0015 in epochs 2-4, the output's std 0.88 by then.
        let centred = InputScale {
            largest: 777.0,
            largest_std: 777.0,
            ..Default::default()
        };
        let crawl = [0.0008, 0.0012, 0.0015];
        let f = unscaled_target_spread(&centred, Some(0.88), &crawl, None);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].cause
                .contains("standard deviation of 0.880 against the targets' 777"),
            "{}",
            f[0].cause
        );
        // An output grown to a tenth of the targets' spread, a fit under way, or a closing
        // gap is not a crawl; nor is anything without the output's statistics.
        assert!(unscaled_target_spread(&centred, Some(80.0), &crawl, None).is_empty());
        assert!(unscaled_target_spread(&centred, Some(0.88), &[0.02, 0.06, 0.12], None).is_empty());
        assert!(unscaled_target_spread(&centred, None, &crawl, None).is_empty());
        // Barely worse than the mean (the airline's month-to-month changes, mean 2.2, std
        // 25.5), the spread is what is missing; far worse, the offset is the cause.
        let f = unscaled_target_spread(&centred, Some(0.12), &[-0.022, -0.02, -0.017], None);
        assert!(
            f[0].cause.contains("standard deviation of 0.120"),
            "{}",
            f[0].cause
        );
        let f = unscaled_target_spread(&centred, Some(0.88), &[-1.6, -1.4, -1.1], None);
        assert!(
            f[0].cause.contains("worse than the targets' mean"),
            "{}",
            f[0].cause
        );
    }

    #[test]
    fn an_output_crawling_toward_large_targets_means_unscaled_targets() {
        // The sunspots GRU without target scaling: R² -1.60, -1.39, -1.09 in its first epochs
        // (unexplained variance 2.60 -> 2.09, closing 20%).
        let crawl = [-1.60, -1.39, -1.09];
        let f = unscaled_target(44.3, &crawl, None);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].value, f[0].threshold, f[0].epoch), (44.3, 10.0, 3));
        assert!(
            f[0].cause.contains("-1.09 at epoch 3, -1.60 at epoch 1"),
            "{}",
            f[0].cause
        );
        // Two epochs are not yet a crawl.
        assert!(unscaled_target(44.3, &crawl[..2], None).is_empty());
        // The seeds' house prices (a linear model, gradient descent) close the gap fast:
        // unexplained 4.81 -> 1.78.
        assert!(unscaled_target(112.0, &[-3.81, -1.88, -0.78], None).is_empty());
        // Closing by just under a half still crawls; by a half it does not.
        assert_eq!(unscaled_target(44.3, &[-3.0, -2.5, -1.01], None).len(), 1);
        assert!(unscaled_target(44.3, &[-3.0, -2.5, -1.0], None).is_empty());
        // Once better than the mean it learns, slowly or not; small targets are not the cause.
        assert!(unscaled_target(44.3, &[-1.6, -1.4, 0.05], None).is_empty());
        assert!(unscaled_target(9.9, &crawl, None).is_empty());
        // Unscaled inputs (an autoencoder's targets are its inputs) are reported instead.
        let inputs = Some(Problem::UnscaledInputs);
        assert!(unscaled_target(44.3, &crawl, inputs).is_empty());
    }

    /// The through-time findings for a recurrent layer `kind` whose first of `steps` steps got
    /// `ratio` of the error, after epochs of training losses `losses` and `step` steps.
    fn through(kind: &str, ratio: f64, steps: usize, losses: &[f64], step: u64) -> Vec<Finding> {
        let records: Vec<EpochRecord> = losses
            .iter()
            .enumerate()
            .map(|(e, &loss)| {
                let mut r = scored(e, 0.5, 0.5);
                r.train = [("loss".to_string(), loss)].into_iter().collect();
                r
            })
            .collect();
        let diagnostics = EpochDiagnostics {
            samples: 2,
            layers: vec![(
                "1".to_string(),
                LayerDiagnostics {
                    kind: kind.into(),
                    first_step_gradient: Some(ratio),
                    steps: Some(steps),
                    ..Default::default()
                },
            )],
            findings: Vec::new(),
        };
        apply_at(through_time, &records, &[], None, &diagnostics, step)
    }

    #[test]
    fn an_error_that_dies_out_through_time_while_nothing_is_learned_vanishes() {
        // The long-memory RNN: 1.2e-6 of the error reaches the first of 40 steps, the loss
        // sits at ln 2 after 108 steps.
        let stuck = [0.702, 0.694, 0.692, 0.689];
        let f = through("RNN", 1.2e-6, 40, &stuck, 108);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].fix,
            [
                "model.layers[1].type=\"lstm\"",
                "model.layers[1].forget_bias=2.8"
            ]
        );
        // Gated cells keep their type; a shorter sequence needs a smaller bias: σ(b)^24 = 0.1.
        for kind in ["LSTM", "GRU"] {
            let f = through(kind, 1e-8, 24, &stuck, 108);
            assert_eq!(f[0].fix, ["model.layers[1].forget_bias=2.3"]);
        }
        assert!((forget_bias_for(24) - 2.3).abs() < 0.05);
        // A cell that learns with little error at its first step leans on the last ones; one
        // that has taken few steps (a small set) is slow, not stuck; enough error is fine.
        assert!(through("LSTM", 1e-5, 24, &[0.70, 0.65, 0.60, 0.55], 108).is_empty());
        assert!(through("RNN", 1.2e-6, 40, &stuck, 15).is_empty());
        assert!(through("RNN", 1e-3, 40, &stuck, 108).is_empty());
    }

    #[test]
    fn dead_relus_under_too_large_steps_follow_the_rate() {
        let dead = |layer: &str| {
            let mut f = Finding::new(Problem::DeadRelu, 0);
            f.layers = vec![layer.into()];
            f.fix = vec![format!("model.layers[{layer}].type=\"leaky_relu\"")];
            f.lr_factor = Some(0.1);
            f
        };
        // Alone, or beside a finding that raises the rate, dead units are their own problem.
        let mut alone = vec![dead("1"), Finding::new(Problem::LearningRateTooSmall, 0)];
        let before = alone.clone();
        attribute(&mut alone);
        assert_eq!(alone, before);
        // Seen an epoch before the rate's finding (epoch 3), they follow it once it is known.
        let mut rate = Finding::new(Problem::LearningRateTooLarge, 2);
        rate.lr_factor = Some(0.1);
        let mut run = vec![dead("1"), dead("3"), rate.clone()];
        attribute(&mut run);
        for f in &run[..2] {
            assert_eq!(f.follows, Some(Problem::LearningRateTooLarge));
            assert!(f.fix.is_empty() && f.lr_factor.is_none(), "{f:?}");
            assert!(
                f.cause.contains("learning rate too large, epoch 3"),
                "{}",
                f.cause
            );
        }
        assert_eq!(run[2], rate);
    }
}
