//! The `nabla` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use nabla::commands::{
    bench, check_grads, check_optim, doctor, lr_find, oracle, train, tune, use_model,
};
use nabla_core::{SimdLevel, set_max_simd_level};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "nabla", version, about = "Define, train and diagnose neural networks", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads, for every command (default: all cores, or RAYON_NUM_THREADS). A run
    /// gives the same result for the same seed and the same thread count; another count may
    /// change the last bits, as the work is divided differently.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Caps the vector instructions of nabla's own loops (activations, softmax, recurrent
    /// gates, optimizer updates): avx512, avx2 or baseline (default: the widest the CPU has, or
    /// NABLA_SIMD). avx512 and avx2 give the same bits; baseline, without fused multiply-adds,
    /// differs in the last bits. The matrix products keep the CPU's own kernels. For testing
    /// the narrower code and comparing its speed.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_simd_level)]
    simd: Option<SimdLevel>,
}

fn parse_simd_level(s: &str) -> Result<SimdLevel, String> {
    s.parse()
        .map_err(|_| format!("expected {}", SimdLevel::choices()))
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a TOML config (or, with none, the embedded digits example) into a run
    /// directory: model.safetensors, optimizer.safetensors, config.toml (resolved),
    /// preprocessing.json, metrics.jsonl, history.json and report.html, checkpointed as it
    /// trains (after the first and last epoch, and at most every train.checkpoint_seconds).
    ///
    /// Examples:
    ///   nabla train
    ///   nabla train examples/iris.toml --out runs/iris --set optimizer.lr=0.003 --seed 1
    ///   nabla train --resume runs/iris
    #[command(verbatim_doc_comment)]
    Train(train::TrainArgs),
    /// Search hyperparameters over the ranges in the config's [tune] section: each trial
    /// trains on the training split and is scored on the validation split (tune.metric at its
    /// best epoch). Prints the trials best first (early-stopped and diverged trials marked)
    /// and writes trials.json and best.toml (the best trial's config) into the output folder.
    ///
    /// Examples:
    ///   nabla tune examples/diabetes.toml --grid
    ///   nabla tune examples/mnist.toml --random 4 --out runs/tune-mnist
    ///   nabla train runs/tune-mnist/best.toml
    #[command(verbatim_doc_comment)]
    Tune(tune::TuneArgs),
    /// Diagnose a config: a short probe run (5 epochs, in memory) with the convergence doctor
    /// watching every layer, then each problem found (vanishing or exploding gradients, in
    /// depth or through time, dead ReLUs, saturated units, symmetric units, unscaled inputs or
    /// targets, a learning rate too small or too large, overconfident predictions,
    /// overfitting, rare classes ignored, NaN/Inf traced to its layer) with its cause, remedy
    /// and the config changes that apply it. A finding about the learning rate gets the rate
    /// the range test (lr-find) measures.
    ///
    /// Examples:
    ///   nabla doctor examples/broken/vanishing.toml
    ///   nabla doctor examples/broken/dead_relu.toml --fixed fixed.toml && nabla doctor fixed.toml
    #[command(verbatim_doc_comment)]
    Doctor(doctor::DoctorArgs),
    /// The learning-rate range test (Smith 2017; fastai's lr_find): train the config's model
    /// from its initial weights while the learning rate grows geometrically from --start to
    /// --end, then print the smoothed loss at each decade of the rate, where it diverged, and
    /// a learning rate to train with (a tenth of the one at the lowest loss). Nothing is saved
    /// but the optional chart.
    ///
    /// Examples:
    ///   nabla lr-find examples/broken/plateau.toml
    ///   nabla lr-find examples/mnist.toml --steps 300 --plot lr.svg
    #[command(verbatim_doc_comment)]
    LrFind(lr_find::LrFindArgs),
    /// Evaluate a run's model on a CSV that has the target column.
    ///
    /// Example: nabla eval runs/digits data/digits/test.csv
    Eval {
        /// The run directory.
        run: PathBuf,
        /// A CSV with the training file's columns (a text for a character model, an IDX image
        /// file for a model trained on IDX data, a folder of class folders for a model trained
        /// on a folder of images)
        data: PathBuf,
        /// The IDX label file of IDX images
        #[arg(long, value_name = "LABELS")]
        labels: Option<PathBuf>,
        /// Print the metrics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Predict with a run's model: the class and its probabilities, or the value, per row.
    ///
    /// Example: nabla predict runs/digits data/digits/test.csv -o predictions.csv
    Predict {
        /// The run directory.
        run: PathBuf,
        /// A CSV with the training file's feature columns (the target may be absent), an IDX
        /// image file for a model trained on IDX data, or for a model trained on a folder of
        /// images, an image or a folder of them (a `file` column names each)
        data: PathBuf,
        /// Write the predictions here (atomically) instead of to stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Draw examples from a GAN run's generator (a config with [gan]): one CSV row per sample,
    /// in the training file's feature columns and units. From a character model's run
    /// (data.text): text written after a prompt, one character at a time.
    ///
    /// Examples:
    ///   nabla sample runs/digits_gan -n 100 -o samples.csv
    ///   nabla sample runs/kjv_lstm --prompt "And God said" -n 300 --temperature 0.7
    Sample {
        /// The run directory.
        run: PathBuf,
        /// How many samples (GAN; default 64), or characters to write (text; default 500).
        #[arg(short, long)]
        n: Option<usize>,
        /// Seeds the noise or the draws (the same seed gives the same samples).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Text the character model continues (default: a line break).
        #[arg(long)]
        prompt: Option<String>,
        /// How freely a character model picks: p ∝ exp(logit / T); 0 takes the most probable
        /// character, 1 the model's own distribution.
        #[arg(long, default_value_t = 0.8)]
        temperature: f64,
        /// Write the samples here (atomically) instead of to stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Rebuild a run's report.html from its files.
    ///
    /// Example: nabla report runs/digits
    Report {
        /// The run directory.
        run: PathBuf,
    },
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
        /// Which suite: core (GEMM, op overhead, tiny MLP on raw ops), mlp (MLP and tiny-net
        /// training throughput through the layer API, as the peers' "mlp" and "tiny"), cnn and
        /// lstm (the peers' CNN and LSTM workloads; lstm also times GRU and plain-RNN cells), or
        /// doctor (the convergence doctor's overhead per epoch at its default sampling).
        #[arg(value_parser = ["core", "mlp", "cnn", "lstm", "doctor"])]
        suite: String,
        /// Minimum seconds per timed repeat.
        #[arg(long, default_value_t = 0.25)]
        min_time: f64,
    },
}

fn main() -> ExitCode {
    nabla::keep_freed_buffers();
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
    if let Err(e) = configure(&cli) {
        return exit_with(Err(e));
    }
    nabla::on_pool_thread(|| {
        let mut stdout = std::io::stdout().lock();
        exit_with(run(cli, &mut stdout).and_then(|code| Ok(stdout.flush().map(|_| code)?)))
    })
}

/// The exit code of a command's result, with its error, if any, printed to stderr.
fn exit_with(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        // The reader went away (`nabla bench core | head`): stop quietly, as Unix tools do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for bad usage, config, data or files (the user can fix the input), 1 for a failure while
/// running (training diverged, an op failed).
fn exit_code(e: &anyhow::Error) -> u8 {
    use nabla::train::Error;
    match e.downcast_ref::<Error>() {
        Some(Error::Tensor(_)) | Some(Error::Invalid(_)) | Some(Error::Diverged { .. }) => 1,
        _ => 2,
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

/// The SIMD level and the thread pool, before anything runs.
fn configure(cli: &Cli) -> Result<()> {
    // The library reads NABLA_SIMD too, but only warns about a bad value: here it is an error.
    let simd = match (cli.simd, std::env::var("NABLA_SIMD")) {
        (Some(level), _) => Some(level),
        (None, Ok(value)) => Some(
            value
                .parse::<SimdLevel>()
                .map_err(|e| anyhow::anyhow!("NABLA_SIMD: {e}"))?,
        ),
        (None, Err(_)) => None,
    };
    if let Some(level) = simd {
        set_max_simd_level(level);
    }
    rayon::ThreadPoolBuilder::new()
        // 0: rayon's default, RAYON_NUM_THREADS or all cores.
        .num_threads(cli.threads.map_or(0, usize::from))
        // The command runs on a pool thread (`on_pool_thread`): give it the stack `main`
        // would have had (rayon's threads get Rust's 2 MiB).
        .stack_size(MAIN_STACK_BYTES)
        .build_global()?;
    let (threads, cores) = (
        rayon::current_num_threads(),
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    if threads > OVERSUBSCRIBED * cores {
        eprintln!(
            "warning: {threads} worker threads (--threads or RAYON_NUM_THREADS) on {cores} \
             cores: threads beyond the cores add no speed, they cut the work finer and wait \
             for each other (2,000 on 2 cores made a 1 s run take 7 s)"
        );
    }
    Ok(())
}

/// Worker threads per core above which `configure` warns.
const OVERSUBSCRIBED: usize = 4;

/// Linux's default stack for a program's main thread (`ulimit -s`).
const MAIN_STACK_BYTES: usize = 8 << 20;

fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode> {
    match cli.command {
        Command::Train(args) => {
            train::run(args, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor(args) => {
            doctor::run(args, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::LrFind(args) => {
            lr_find::run(args, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tune(args) => {
            tune::run(args, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            run,
            data,
            labels,
            json,
        } => {
            use_model::eval(&run, &data, labels.as_deref(), json, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Predict { run, data, output } => {
            use_model::predict(&run, &data, output.as_deref(), out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sample {
            run,
            n,
            seed,
            prompt,
            temperature,
            output,
        } => {
            let how = use_model::SampleOptions {
                n,
                seed,
                prompt,
                temperature,
            };
            use_model::sample(&run, &how, output.as_deref(), out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { run } => {
            use_model::report(&run, out)?;
            Ok(ExitCode::SUCCESS)
        }
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
        Command::Bench { suite, min_time } => {
            let threads = rayon::current_num_threads();
            let timing = bench::Timing {
                min_time_s: min_time,
                ..Default::default()
            };
            let emit = |v: &serde_json::Value| writeln!(out, "{v}");
            match suite.as_str() {
                "mlp" => bench::run_mlp(timing, threads, emit)?,
                "doctor" => bench::run_doctor(timing, threads, emit)?,
                "cnn" => bench::run_cnn(timing, threads, emit)?,
                "lstm" => bench::run_lstm(timing, threads, emit)?,
                _ => bench::run_core(timing, threads, emit)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
