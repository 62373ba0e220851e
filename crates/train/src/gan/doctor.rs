//! The convergence doctor for GANs: rules over the per-epoch records of the two-player game.
//!
//! A GAN trains when neither network wins outright. The records hold what tells the
//! failures apart: the discriminator's mean output on real and generated examples (`d_real`,
//! `d_fake`) and the measures of a fixed noise's samples against real data (`diversity`: 1 for
//! samples as varied as real data, near 0 when they are all alike).
//!
//! - **The discriminator wins**: `D(G(z))` near 0 epoch after epoch. It rejects every sample,
//!   so the generator learns little from it: with the minimax loss `log(1 − D(G(z)))` the
//!   gradient vanishes outright (`∂/∂logit = −D(G(z))`); with the non-saturating loss it
//!   stays, but the generator falls further behind each epoch.
//! - **Mode collapse**: the samples of many noise vectors are nearly the same: the generator
//!   found a few outputs that fool the discriminator and maps every `z` onto them.
//! - **Partial mode collapse** (labelled data): the samples vary, but fall on only a few of the
//!   data's classes (each sample takes the class of its nearest training example): the
//!   generator covers some modes of the data and ignores the others.
//!
//! The thresholds sit far from healthy runs. The shipped digits GAN on seeds 0–4 (200 epochs)
//! never had `D(G(z))` below 0.14 or a diversity below 0.22. With the minimax loss, or a
//! discriminator learning 10x faster, it still trains: the lowest `D(G(z))` was 0.014 for a
//! single epoch and 0.049 otherwise. The unbalanced runs in the tests reach 0.003 (a generator
//! learning 100x slower) and a diversity of 0.08 (10x faster).
//!
//! Coverage needs a longer look. A healthy digits GAN covers only 1 to 7 of the 10 digits for
//! its first 20 to 46 epochs, while its samples are still blurred strokes near the mean digit.
//! So the partial-collapse rule reads the last [`COVERAGE_WINDOW`] epochs, and only fires
//! when the samples were varied in all of them (diversity at least [`VARIED`]) and never
//! covered more than half the classes. Over 200 epochs, seeds 0–4 of the shipped config and
//! the runs with a generator learning 3x or 10x faster or a discriminator learning 10x faster
//! never met that: the fewest classes they covered in such a window was 6. A generator fed one
//! noise value (`gan.latent = 1`) met it from epoch 34 on, and covered 1 to 6 digits until its
//! last epoch.

use super::{GanConfig, GeneratorLoss};
use crate::doctor::{Finding, Problem, rules::sig};
use crate::trainer::EpochRecord;

/// `D(G(z))` below this, [`RUNNING`] epochs running: the discriminator wins.
pub const DISCRIMINATOR_WINS: f64 = 0.01;
/// Sample diversity below this, [`RUNNING`] epochs running: mode collapse.
pub const COLLAPSED: f64 = 0.15;
/// Epochs a statistic must stay past its threshold: one bad epoch is noise in a GAN.
pub const RUNNING: usize = 3;
/// Epochs the partial-collapse rule reads (see the module docs).
pub const COVERAGE_WINDOW: usize = 10;
/// Sample diversity from which the samples count as varied, no longer blurred near one mean.
pub const VARIED: f64 = 0.4;
/// A noise narrower than this is the first suspect of a partial collapse (the shipped GANs'
/// width).
pub const LATENT_WIDTH: usize = 32;

/// What the rules see besides the records: the settings their remedies change.
pub struct GanSettings<'a> {
    pub config: &'a GanConfig,
    pub generator_lr: f64,
    pub discriminator_lr: f64,
    /// The global step (0-based) that ended the last record's epoch.
    pub last_step: u64,
    /// How many classes the real data has, when it is labelled (the samples' class coverage
    /// is measured against them).
    pub classes: Option<usize>,
}

/// The findings the records up to and including the last one support (the caller drops those
/// already reported).
pub fn evaluate(epochs: &[EpochRecord], settings: &GanSettings<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(current) = epochs.last() else {
        return out;
    };
    let recent = &epochs[epochs.len().saturating_sub(RUNNING)..];
    if recent.len() < RUNNING {
        return out;
    }
    let worst = |get: &dyn Fn(&EpochRecord) -> Option<f64>| -> Option<f64> {
        recent
            .iter()
            .map(get)
            .collect::<Option<Vec<f64>>>()
            .map(|v| v.into_iter().fold(f64::NEG_INFINITY, f64::max))
    };
    if let Some(d_fake) = worst(&|r| r.train.get("d_fake").copied())
        && d_fake < DISCRIMINATOR_WINS
    {
        out.push(discriminator_wins(current, d_fake, settings));
    }
    if let Some(diversity) = worst(&|r| r.samples.as_ref()?.get("diversity").copied())
        && diversity < COLLAPSED
    {
        out.push(mode_collapse(current, diversity, settings));
    }
    if let Some(classes) = settings.classes
        && let Some(window) = epochs
            .len()
            .checked_sub(COVERAGE_WINDOW)
            .map(|i| &epochs[i..])
    {
        let samples = |key: &str| -> Option<Vec<f64>> {
            window
                .iter()
                .map(|r| r.samples.as_ref()?.get(key).copied())
                .collect()
        };
        if let (Some(diversity), Some(covered)) = (samples("diversity"), samples("classes_covered"))
        {
            let least_varied = diversity.into_iter().fold(f64::INFINITY, f64::min);
            let most_covered = covered.into_iter().fold(0.0, f64::max);
            if least_varied >= VARIED && most_covered <= (classes / 2) as f64 {
                out.push(partial_mode_collapse(
                    current,
                    most_covered,
                    classes,
                    settings,
                ));
            }
        }
    }
    out
}

fn discriminator_wins(current: &EpochRecord, d_fake: f64, s: &GanSettings<'_>) -> Finding {
    let mut f = Finding::new(Problem::DiscriminatorWins, current.epoch);
    f.statistic = format!("largest D(G(z)) over the last {RUNNING} epochs");
    f.value = d_fake;
    f.threshold = DISCRIMINATOR_WINS;
    f.cause = "the discriminator rejects every sample with certainty, so its verdict carries \
               almost nothing the generator can follow: with the minimax loss log(1 − D(G(z))) \
               the generator's gradient vanishes (it is proportional to D(G(z))); with the \
               non-saturating loss the gradient stays but the generator falls further behind"
        .into();
    let mut remedies = Vec::new();
    if s.generator_lr < s.discriminator_lr {
        match_learning_rates(
            &mut f,
            &mut remedies,
            s,
            "give the generator the discriminator's learning rate",
            "",
        );
    }
    if s.config.generator_loss == GeneratorLoss::Minimax {
        remedies.push("use the non-saturating generator loss −log D(G(z))".into());
        f.fix.push("gan.generator_loss=\"non_saturating\"".into());
    }
    if s.config.real_label >= 1.0 {
        remedies.push("smooth the real labels (real_label = 0.9)".into());
        f.fix.push("gan.real_label=0.9".into());
    }
    if s.config.discriminator_steps > 1 {
        remedies.push(format!(
            "take one discriminator step per generator step instead of {}",
            s.config.discriminator_steps
        ));
        f.fix.push("gan.discriminator_steps=1".into());
    }
    remedies.push(
        "weaken the discriminator: dropout between its layers, fewer units, or a lower \
         learning rate"
            .into(),
    );
    f.remedy = remedies.join("; ");
    f.step = s.last_step;
    f
}

fn mode_collapse(current: &EpochRecord, diversity: f64, s: &GanSettings<'_>) -> Finding {
    let mut f = Finding::new(Problem::ModeCollapse, current.epoch);
    f.statistic = format!("largest sample diversity over the last {RUNNING} epochs");
    f.value = diversity;
    f.threshold = COLLAPSED;
    f.cause = "the generator maps most noise vectors onto a few outputs that the discriminator \
               currently accepts; when the discriminator learns to reject them the generator \
               jumps to others instead of spreading out"
        .into();
    let mut remedies = Vec::new();
    if s.generator_lr > s.discriminator_lr {
        match_learning_rates(
            &mut f,
            &mut remedies,
            s,
            LOWER_GENERATOR_LR,
            ": a generator that moves faster than its critic chases one output after another",
        );
    }
    if s.config.real_label >= 1.0 {
        remedies.push("smooth the real labels (real_label = 0.9)".into());
        f.fix.push("gan.real_label=0.9".into());
    }
    remedies.push(
        "if it persists: a wider noise (gan.latent), dropout in the discriminator, or lower \
         learning rates for both; a collapse in the first epochs often passes"
            .into(),
    );
    f.remedy = remedies.join("; ");
    f.step = s.last_step;
    f
}

const LOWER_GENERATOR_LR: &str = "lower the generator's learning rate to the discriminator's";

/// The remedy that gives the generator the discriminator's learning rate: `remedy`, the two
/// rates, then `why`; and its config change.
fn match_learning_rates(
    f: &mut Finding,
    remedies: &mut Vec<String>,
    s: &GanSettings<'_>,
    remedy: &str,
    why: &str,
) {
    remedies.push(format!(
        "{remedy} ({} against {}){why}",
        sig(s.generator_lr),
        sig(s.discriminator_lr)
    ));
    f.fix
        .push(format!("gan.generator.optimizer.lr={}", s.discriminator_lr));
}

fn partial_mode_collapse(
    current: &EpochRecord,
    most_covered: f64,
    classes: usize,
    s: &GanSettings<'_>,
) -> Finding {
    let mut f = Finding::new(Problem::PartialModeCollapse, current.epoch);
    f.statistic = format!(
        "classes covered of {classes}, the most in any of the last {COVERAGE_WINDOW} epochs, \
         all with varied samples (diversity at least {VARIED})"
    );
    f.value = most_covered;
    f.threshold = (classes / 2) as f64;
    f.cause = "the generator draws varied samples, but from a few of the data's classes only: \
               it has settled on some modes of the data, the discriminator accepts them, and \
               nothing pulls the generator towards the classes it never draws"
        .into();
    let mut remedies = Vec::new();
    let latent = s.config.latent;
    if latent < LATENT_WIDTH {
        let wider = (2 * latent).max(LATENT_WIDTH);
        remedies.push(format!(
            "widen the noise from {latent} to {wider} values (gan.latent): a generator fed \
             few noise values has too few directions to reach every class"
        ));
        f.fix.push(format!("gan.latent={wider}"));
    }
    if s.generator_lr > s.discriminator_lr {
        match_learning_rates(&mut f, &mut remedies, s, LOWER_GENERATOR_LR, "");
    }
    remedies.push(
        "if it persists: a wider generator, dropout in the discriminator, or lower learning \
         rates for both"
            .into(),
    );
    f.remedy = remedies.join("; ");
    f.step = s.last_step;
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Epoch records with these `D(G(z))` and sample diversities.
    fn records(d_fake: &[f64], diversity: &[f64]) -> Vec<EpochRecord> {
        d_fake
            .iter()
            .zip(diversity)
            .enumerate()
            .map(|(epoch, (&d, &v))| EpochRecord {
                epoch,
                learning_rate: 2e-4,
                train: BTreeMap::from([("d_fake".into(), d), ("d_real".into(), 0.9)]),
                valid: None,
                grad_norm: 1.0,
                layer_grad_norms: BTreeMap::new(),
                diagnostics: None,
                samples: Some(BTreeMap::from([("diversity".into(), v)])),
            })
            .collect()
    }

    /// Settings with the generator's and the discriminator's learning rates, the epoch
    /// ending at step 99.
    fn settings(config: &GanConfig, generator_lr: f64, discriminator_lr: f64) -> GanSettings<'_> {
        GanSettings {
            config,
            generator_lr,
            discriminator_lr,
            last_step: 99,
            classes: Some(10),
        }
    }

    fn problems(epochs: &[EpochRecord], s: &GanSettings<'_>) -> Vec<Problem> {
        evaluate(epochs, s).iter().map(|f| f.problem).collect()
    }

    #[test]
    fn a_discriminator_that_rejects_every_sample_three_epochs_running_wins() {
        let config = GanConfig::default();
        let s = settings(&config, 2e-6, 2e-4);
        let div = [0.5; 6];
        // Healthy: D(G(z)) around 0.2-0.4, one epoch lower as a GAN's noise allows.
        assert!(problems(&records(&[0.3, 0.2, 0.014, 0.3, 0.25, 0.2], &div), &s).is_empty());
        // Two epochs under the threshold are not yet a finding; the third is.
        let d_fake = [0.3, 0.1, 0.02, 0.008, 0.005, 0.003];
        assert!(problems(&records(&d_fake[..5], &div), &s).is_empty());
        let found = evaluate(&records(&d_fake, &div), &s);
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.problem, Problem::DiscriminatorWins);
        assert_eq!((f.epoch, f.step, f.value), (6, 99, 0.008));
        // The remedies that apply to these settings: the generator's slower learning rate,
        // the hard real labels of the default config.
        assert_eq!(
            f.fix,
            ["gan.generator.optimizer.lr=0.0002", "gan.real_label=0.9"]
        );
        // The minimax loss adds its own remedy; a balanced lr and smoothed labels drop theirs.
        let minimax = GanConfig {
            generator_loss: GeneratorLoss::Minimax,
            real_label: 0.9,
            ..GanConfig::default()
        };
        let s = settings(&minimax, 2e-4, 2e-4);
        let f = &evaluate(&records(&d_fake, &div), &s)[0];
        assert_eq!(f.fix, ["gan.generator_loss=\"non_saturating\""]);
        assert!(f.remedy.contains("non-saturating"), "{}", f.remedy);
    }

    #[test]
    fn samples_all_alike_three_epochs_running_are_a_mode_collapse() {
        let config = GanConfig {
            real_label: 0.9,
            ..GanConfig::default()
        };
        let s = settings(&config, 2e-3, 2e-4);
        let d_fake = [0.4; 5];
        // The healthy digits GAN starts at a diversity of about 0.25 and spreads out.
        assert!(problems(&records(&d_fake, &[0.25, 0.22, 0.24, 0.3, 0.5]), &s).is_empty());
        // One collapsed epoch between healthy ones is not a finding.
        assert!(problems(&records(&d_fake, &[0.3, 0.1, 0.3, 0.1, 0.3]), &s).is_empty());
        let found = evaluate(&records(&d_fake, &[0.12, 0.1, 0.09, 0.3, 0.5][..3]), &s);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(
            (f.problem, f.epoch, f.value),
            (Problem::ModeCollapse, 3, 0.12)
        );
        assert_eq!(f.fix, ["gan.generator.optimizer.lr=0.0002"]);
        // Without sample measures (samples = 0) the rule has nothing to read.
        let mut unmeasured = records(&d_fake[..3], &[0.1; 3]);
        unmeasured.iter_mut().for_each(|r| r.samples = None);
        assert!(problems(&unmeasured, &s).is_empty());
    }

    /// Epoch records with these sample diversities and classes covered (of 10).
    fn coverage_records(diversity: &[f64], covered: &[f64]) -> Vec<EpochRecord> {
        let mut epochs = records(&vec![0.4; diversity.len()], diversity);
        for (r, &c) in epochs.iter_mut().zip(covered) {
            let samples = r.samples.as_mut().expect("measured");
            samples.insert("classes_covered".into(), c);
        }
        epochs
    }

    #[test]
    fn varied_samples_of_few_classes_for_ten_epochs_are_a_partial_collapse() {
        let narrow = GanConfig {
            latent: 1,
            real_label: 0.9,
            ..GanConfig::default()
        };
        let s = settings(&narrow, 2e-4, 2e-4);
        // A healthy start: few classes while the samples are blurred (diversity under 0.4).
        let blurred = coverage_records(&[0.25; 30], &[3.0; 30]);
        assert!(problems(&blurred, &s).is_empty());
        // Varied samples on 5 of 10 classes: nine epochs are not yet a finding, ten are.
        let (varied, few) = (
            [0.6; 10],
            [4.0, 5.0, 3.0, 4.0, 5.0, 4.0, 2.0, 4.0, 5.0, 4.0],
        );
        assert!(problems(&coverage_records(&varied[..9], &few[..9]), &s).is_empty());
        let found = evaluate(&coverage_records(&varied, &few), &s);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(
            (f.problem, f.epoch, f.value, f.threshold),
            (Problem::PartialModeCollapse, 10, 5.0, 5.0)
        );
        // One noise value: widen it to the shipped width. A balanced lr adds nothing.
        assert_eq!(f.fix, ["gan.latent=32"]);
        // One epoch on 6 classes in the window, or one blurred epoch, clears it.
        let mut six = few;
        six[3] = 6.0;
        assert!(problems(&coverage_records(&varied, &six), &s).is_empty());
        let mut one_blurred = varied;
        one_blurred[9] = 0.3;
        assert!(problems(&coverage_records(&one_blurred, &few), &s).is_empty());
        // A wide noise and a faster generator: the remedy is the generator's lr.
        let wide = GanConfig::default();
        let s_fast = settings(&wide, 2e-3, 2e-4);
        let f = &evaluate(&coverage_records(&varied, &few), &s_fast)[0];
        assert_eq!(f.fix, ["gan.generator.optimizer.lr=0.0002"]);
        // Unlabelled data has no classes to cover.
        let unlabelled = GanSettings {
            classes: None,
            ..settings(&narrow, 2e-4, 2e-4)
        };
        assert!(problems(&coverage_records(&varied, &few), &unlabelled).is_empty());
    }
}
