//! `nabla doctor`: a short probe run of a config (a few epochs, in memory, no run folder)
//! with the doctor sampling every step it is set to, then the diagnosis. A GAN config plays
//! its game for those epochs, its records read by the GAN doctor.

use super::rules::sig;
use super::{Finding, LayerDiagnostics, Problem};
use crate::config::Located;
use crate::error::{Error, Result};
use crate::experiment::prepare;
use crate::lr_find::{self, SweepOptions};
use crate::trainer::{History, Trainer};
use serde::Serialize;

/// The outcome of a probe run.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// Epochs that ran (the last one cut short when training diverged).
    pub epochs: usize,
    /// The training loss of each completed epoch.
    pub losses: Vec<f64>,
    /// The findings, in the order they were found.
    pub findings: Vec<Finding>,
    /// Why training stopped early, when it diverged.
    pub diverged: Option<String>,
    /// The last epoch's per-layer statistics.
    pub layers: Vec<(String, LayerDiagnostics)>,
    /// A GAN's discriminator output on generated examples, `D(G(z))`, per epoch (empty for a
    /// supervised config, whose `losses` tell how it went).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub d_fake: Vec<f64>,
}

impl Diagnosis {
    /// Whether the loss fell over the probe: the last epoch's training loss below 90% of the
    /// first's (and training did not diverge).
    pub fn loss_falls(&self) -> bool {
        self.diverged.is_none()
            && matches!((self.losses.first(), self.losses.last()),
                (Some(a), Some(b)) if self.losses.len() >= 2 && *b < 0.9 * a)
    }
}

/// Trains `located`'s config for at most `epochs` epochs with the doctor on (whatever the
/// config's `[diagnostics]` says) and returns what it found.
pub fn probe(located: &Located, epochs: usize) -> Result<Diagnosis> {
    if located.config.gan.is_some() {
        return probe_gan(located, epochs);
    }
    let mut l = located.clone();
    l.config.diagnostics.enabled = true;
    let mut exp = prepare(&l)?;
    exp.train_config.epochs = exp.train_config.epochs.min(epochs.max(1));
    exp.train_config.verbose = false;
    let doctor = exp
        .doctor()
        .ok_or_else(|| Error::Invalid("the doctor is off".into()))?;
    let data = &exp.data;
    let mut trainer = Trainer::new(
        &exp.model,
        exp.optimizer.as_mut(),
        &exp.train_config,
        Default::default(),
    )?
    .with_doctor(doctor);
    let mut diverged = None;
    while !trainer.is_finished() {
        match trainer.run_epoch(&data.train, data.valid.as_ref()) {
            Ok(_) => {}
            Err(e @ Error::Diverged { .. }) => {
                diverged = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let history = trainer.history();
    let mut findings: Vec<Finding> = history
        .epochs
        .iter()
        .filter_map(|r| r.diagnostics.as_ref())
        .flat_map(|d| d.findings.iter().cloned())
        .collect();
    let mut layers = history
        .epochs
        .last()
        .and_then(|r| r.diagnostics.as_ref())
        .map(|d| d.layers.clone())
        .unwrap_or_default();
    if let Some(failure) = trainer.failure_diagnostics() {
        findings.extend(failure.findings.iter().cloned());
        layers = failure.layers.clone();
    }
    super::rules::attribute(&mut findings);
    measure_learning_rate(&l, &mut findings);
    Ok(Diagnosis {
        epochs: history.epochs.len() + usize::from(diverged.is_some()),
        losses: history
            .epochs
            .iter()
            .filter_map(|r| r.train.get("loss").copied())
            .collect(),
        findings,
        diverged,
        layers,
        d_fake: Vec::new(),
    })
}

/// The problems whose remedy is the learning rate itself.
fn rate_is_the_remedy(problem: Problem) -> bool {
    matches!(
        problem,
        Problem::LearningRateTooSmall | Problem::LearningRateTooLarge | Problem::Overconfidence
    )
}

/// A rule's factor for the learning rate (x1000, /10) is a guess at the size of the change;
/// when one of `findings` is about the rate, the range test ([`lr_find::sweep`], from the
/// config's initial weights) measures where this model's loss falls fastest, and its
/// suggestion replaces the factor when it moves the rate the way the finding says. A sweep
/// that fails or suggests nothing leaves the factor: the diagnosis stands without it.
fn measure_learning_rate(located: &Located, findings: &mut [Finding]) {
    if !findings.iter().any(|f| rate_is_the_remedy(f.problem)) {
        return;
    }
    let configured = located.config.optimizer.lr();
    let suggested = prepare(located).ok().and_then(|mut exp| {
        lr_find::sweep(
            &exp.model,
            exp.optimizer.as_mut(),
            &exp.data.train,
            &exp.train_config,
            SweepOptions::default(),
        )
        .ok()?
        .suggested
    });
    let Some(suggested) = suggested else {
        return;
    };
    for f in findings
        .iter_mut()
        .filter(|f| rate_is_the_remedy(f.problem))
    {
        let raise = f.problem == Problem::LearningRateTooSmall;
        if (suggested > configured) != raise {
            continue;
        }
        f.lr_factor = Some(suggested / configured);
        f.remedy += &format!(
            "; measured rather than guessed, the learning-rate range test (`nabla lr-find`) \
             on this model suggests {}, which the fix uses",
            sig(suggested)
        );
        super::fixes::present(&located.config, f);
    }
}

/// A GAN config: its game for at most `epochs` epochs, each record read by the GAN doctor
/// ([`crate::gan::doctor`]).
fn probe_gan(located: &Located, epochs: usize) -> Result<Diagnosis> {
    let mut exp = crate::gan::run::prepare(located)?;
    exp.gan.epochs = exp.gan.epochs.min(epochs.max(1));
    exp.gan.doctor = true;
    exp.gan.verbose = false;
    let reference = exp.reference()?;
    let (mut trainer, data) = exp.trainer(History::default(), reference)?;
    let mut diverged = None;
    while !trainer.is_finished() {
        match trainer.run_epoch(&data.train) {
            Ok(_) => {}
            Err(e @ Error::Diverged { .. }) => {
                diverged = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let history = trainer.finish();
    Ok(Diagnosis {
        epochs: history.epochs.len() + usize::from(diverged.is_some()),
        losses: Vec::new(),
        findings: history
            .epochs
            .iter()
            .filter_map(|r| r.diagnostics.as_ref())
            .flat_map(|d| d.findings.iter().cloned())
            .collect(),
        diverged,
        layers: Vec::new(),
        d_fake: history
            .epochs
            .iter()
            .filter_map(|r| r.train.get("d_fake").copied())
            .collect(),
    })
}

/// `located` with every finding's config changes applied: the config the remedies describe.
pub fn apply_fixes(located: &Located, findings: &[Finding]) -> Result<Located> {
    let mut values: Vec<(String, toml::Value)> = Vec::new();
    for (key, value) in findings
        .iter()
        .flat_map(|f| &f.fix)
        .filter_map(|c| crate::config::parse_override(c))
    {
        // A later change to the same key wins (two findings may both scale the lr).
        values.retain(|(k, _)| *k != key);
        values.push((key, value));
    }
    Ok(located.with_values(&values)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    /// A finding of `problem` on `located`, as the trainer presents it.
    fn presented(located: &Located, problem: Problem, lr_factor: f64) -> Finding {
        let mut f = Finding::new(problem, 0);
        f.lr_factor = Some(lr_factor);
        super::super::fixes::present(&located.config, &mut f);
        f
    }

    #[test]
    fn the_range_test_replaces_a_rate_factor_only_in_the_findings_direction() {
        // Adam at 0.1 on the digits: the sweep suggests a few thousandths.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/broken/overconfident.toml");
        let located = load(&path, &[]).unwrap();
        let mut findings = vec![
            presented(&located, Problem::LearningRateTooLarge, 0.1),
            // A finding that asks for a larger rate cannot take a smaller one.
            presented(&located, Problem::LearningRateTooSmall, 10.0),
            // Nor is a rate factor that only helps another remedy replaced.
            presented(&located, Problem::ExplodingGradients, 0.1),
        ];
        let before = findings.clone();
        measure_learning_rate(&located, &mut findings);
        let factor = findings[0].lr_factor.unwrap();
        assert!(
            (1e-3..1e-1).contains(&factor),
            "suggested {} from 0.1",
            0.1 * factor
        );
        let rate = |f: &Finding| -> f64 {
            f.fix
                .iter()
                .find_map(|c| c.strip_prefix("optimizer.lr="))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!((rate(&findings[0]) / (0.1 * factor) - 1.0).abs() < 5e-3);
        assert!(findings[0].remedy.contains("range test"));
        assert_eq!(findings[1..], before[1..]);
    }
}
