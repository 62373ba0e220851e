//! The `nabla` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use nabla::commands::{bench, check_grads, check_optim, oracle};
use std::io::Write;
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
    /// Replay PyTorch optimizer trajectories and compare nabla's iterates (relative error 1e-9).
    ///
    /// Example: nabla check-optim ../shared/oracle/optim_cases.json
    #[command(name = "check-optim")]
    CheckOptim {
        /// A case file in the "optim-oracle/1" format.
        file: PathBuf,
        /// Print nabla's own trajectories as JSON instead of comparing.
        #[arg(long)]
        emit: bool,
    },
    /// Run benchmarks and print one JSON line per figure (the peers' schema).
    ///
    /// Example: nabla bench mlp --threads 1
    Bench {
        /// Which suite: core (GEMM, op overhead, tiny MLP on raw ops) or mlp (MLP and tiny-net
        /// training throughput through the layer API, as the peers' "mlp" and "tiny").
        #[arg(value_parser = ["core", "mlp"])]
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
    let mut stdout = std::io::stdout().lock();
    match run(cli, &mut stdout).and_then(|code| Ok(stdout.flush().map(|_| code)?)) {
        Ok(code) => code,
        // The reader went away (`nabla bench core | head`): stop quietly, as Unix tools do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn exit_for(failed: usize) -> ExitCode {
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode> {
    match cli.command {
        Command::CheckGrads { file, emit } => {
            let cases = check_grads::load(&file)?;
            if emit {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&check_grads::emit(&cases))?
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let failed = oracle::report(&check_grads::check_all(&cases), out)?;
            Ok(exit_for(failed))
        }
        Command::CheckOptim { file, emit } => {
            let (objective, cases) = check_optim::load(&file)?;
            if emit {
                let doc = check_optim::emit(&objective, &cases);
                writeln!(out, "{}", serde_json::to_string(&doc)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let failed = oracle::report(&check_optim::check_all(&objective, &cases), out)?;
            Ok(exit_for(failed))
        }
        Command::Bench {
            suite,
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
            let emit = |v: &serde_json::Value| writeln!(out, "{v}");
            match suite.as_str() {
                "mlp" => bench::run_mlp(timing, threads, emit)?,
                _ => bench::run_core(timing, threads, emit)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
