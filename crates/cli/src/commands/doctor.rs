//! `nabla doctor`: a short probe run of a config, then the diagnosis: each problem with its
//! layer, the statistic and threshold, the cause, the remedy and the config changes that apply
//! it (`--fixed` writes them into a new config).

use super::train::{Overrides, load_config};
use anyhow::Result;
use nabla_train::checkpoint::write_atomic;
use nabla_train::doctor::{self, probe};
use std::io::Write;
use std::path::PathBuf;

/// What `nabla doctor` was asked to do (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// The config to diagnose (default: the embedded digits example).
    pub config: Option<PathBuf>,
    /// Epochs of the probe run, at most the config's own (default: 5; 10 for a GAN config,
    /// whose rules need 3 epochs running)
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Write the config with every finding's remedy applied here (atomically).
    #[arg(long, value_name = "OUT.toml")]
    pub fixed: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Print the diagnosis as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `nabla doctor`.
pub fn run(args: DoctorArgs, out: &mut dyn Write) -> Result<()> {
    let located = load_config(args.config.as_deref(), &args.overrides)?;
    let gan = located.config.gan.is_some();
    let epochs = args.epochs.unwrap_or(if gan { 10 } else { 5 });
    let diagnosis = probe::probe(&located, epochs)?;
    if let Some(path) = &args.fixed {
        let fixed = probe::apply_fixes(&located, &diagnosis.findings)?;
        let text = fixed.config.to_toml()?;
        let header = format!(
            "# {} with the remedies of `nabla doctor` applied:\n{}\n\n",
            located
                .file
                .as_ref()
                .map_or("the config".into(), |f| f.display().to_string()),
            diagnosis
                .findings
                .iter()
                .flat_map(|f| f.fix.iter().map(|c| format!("#   {c}")))
                .collect::<Vec<_>>()
                .join("\n")
        );
        write_atomic(path, (header + &text).as_bytes())?;
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&diagnosis)?)?;
        return Ok(());
    }
    let losses = &diagnosis.losses;
    let d_fake = &diagnosis.d_fake;
    let trend = match (losses.first(), losses.last()) {
        _ if gan => match (d_fake.first(), d_fake.last()) {
            (Some(a), Some(b)) => format!(
                "D(G(z)) {} -> {} over {} epochs",
                doctor::rules::sig(*a),
                doctor::rules::sig(*b),
                d_fake.len()
            ),
            _ => "no epoch completed".into(),
        },
        (Some(a), Some(b)) if losses.len() >= 2 => format!(
            "training loss {} -> {} over {} epochs",
            doctor::rules::sig(*a),
            doctor::rules::sig(*b),
            losses.len()
        ),
        (Some(a), _) => format!("training loss {} after 1 epoch", doctor::rules::sig(*a)),
        _ => "no epoch completed".into(),
    };
    if diagnosis.findings.is_empty() {
        writeln!(out, "no problems found ({trend})")?;
    } else {
        writeln!(
            out,
            "{} problem(s) found ({trend}{}):\n",
            diagnosis.findings.len(),
            if diagnosis.diverged.is_some() {
                ", then diverged"
            } else {
                ""
            }
        )?;
        for f in &diagnosis.findings {
            writeln!(out, "{}\n", doctor::describe(f))?;
        }
        if let Some(path) = &args.fixed {
            writeln!(out, "the remedies applied: {}", path.display())?;
        }
    }
    Ok(())
}
