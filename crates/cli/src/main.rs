//! The `nabla` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use nabla::commands::{bench, check_grads};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "nabla", version, about = "Define, train and diagnose neural networks", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay PyTorch reference gradient cases and compare nabla's values and gradients.
    ///
    /// Example: nabla check-grads ../shared/oracle/grad_cases.json
    #[command(name = "check-grads")]
    CheckGrads {
        /// A case file in the "grad-oracle/1" format.
        file: PathBuf,
        /// Print nabla's own outputs and gradients as JSON instead of comparing.
        #[arg(long)]
        emit: bool,
    },
    /// Run benchmarks and print one JSON line per figure (the peers' schema).
    ///
    /// Example: nabla bench core --threads 1
    Bench {
        /// Which suite: core (GEMM, op overhead, tiny MLP).
        #[arg(value_parser = ["core"])]
        suite: String,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Minimum seconds per timed repeat.
        #[arg(long, default_value_t = 0.25)]
        min_time: f64,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::CheckGrads { file, emit } => {
            let cases = check_grads::load(&file)?;
            if emit {
                println!("{}", serde_json::to_string(&check_grads::emit(&cases))?);
                return Ok(ExitCode::SUCCESS);
            }
            let verdicts = check_grads::check_all(&cases);
            let failed = verdicts.iter().filter(|v| v.outcome.is_err()).count();
            for v in &verdicts {
                match &v.outcome {
                    Ok(()) => println!("ok     {}", v.id),
                    Err(e) => println!("FAILED {}: {e}", v.id),
                }
            }
            println!("{} passed, {failed} failed", verdicts.len() - failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Bench {
            suite: _,
            threads,
            min_time,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build_global()?;
            let timing = bench::Timing {
                min_time_s: min_time,
                ..Default::default()
            };
            bench::run_core(timing, threads, |v| println!("{v}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
