//! A run directory: the files a training run leaves, and how they are written so that a run
//! killed at any moment leaves either the previous complete checkpoint or the new one.
//!
//! Each checkpoint is a set of files (weights, optimizer state, history, metrics log, ...) that
//! must change together. They are first written in full to a staging folder; a marker file
//! written atomically into it is the commit point; then each file is renamed into place (each
//! rename is atomic). [`recover`], run before anything reads or writes the folder, finishes a
//! committed set that was interrupted while moving (roll forward) and deletes an uncommitted
//! one (roll back), along with temporary files of interrupted single-file writes.

use crate::checkpoint::write_atomic;
use crate::error::{Error, Result, io};
use std::path::{Path, PathBuf};

/// The model's weights and buffers (safetensors, PyTorch names).
pub const MODEL: &str = "model.safetensors";
/// The weights of the best epoch so far (when early stopping restores the best).
pub const BEST: &str = "best.safetensors";
/// The optimizer's state (a GAN's generator's).
pub const OPTIMIZER: &str = "optimizer.safetensors";
/// A GAN's discriminator's optimizer state.
pub const DISCRIMINATOR_OPTIMIZER: &str = "discriminator_optimizer.safetensors";
/// The resolved config: every default filled in, data paths absolute.
pub const CONFIG: &str = "config.toml";
/// The CSV schema and the fitted preprocessing (what `predict` applies to new data).
pub const PREPROCESSING: &str = "preprocessing.json";
/// One JSON line per epoch.
pub const METRICS: &str = "metrics.jsonl";
/// The training history and the final evaluation.
pub const HISTORY: &str = "history.json";
/// The HTML report.
pub const REPORT: &str = "report.html";

const STAGING: &str = ".checkpoint-next";
const COMMITTED: &str = "COMMITTED";

/// Writes `files` (name, contents) into `dir` as one unit: after a crash at any point, and
/// [`recover`], `dir` holds either all the old versions or all the new ones.
pub fn commit(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    recover(dir)?;
    let staging = dir.join(STAGING);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    for (name, bytes) in files {
        write_atomic(&staging.join(name), bytes)?;
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    // The commit point: from here on, recovery moves the new files in.
    write_atomic(&staging.join(COMMITTED), names.join("\n").as_bytes())?;
    move_committed(dir)
}

fn move_committed(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING);
    let marker = staging.join(COMMITTED);
    let names = std::fs::read_to_string(&marker).map_err(io(&marker))?;
    for name in names.lines().filter(|n| !n.is_empty()) {
        let from = staging.join(name);
        if from.exists() {
            std::fs::rename(&from, dir.join(name)).map_err(io(&from))?;
        }
    }
    sync_dir(dir);
    std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Brings `dir` back to a complete checkpoint after an interrupted [`commit`] or write: a
/// committed staging set is moved in, an uncommitted one deleted, stray temporary files removed.
pub fn recover(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING);
    if staging.join(COMMITTED).is_file() {
        move_committed(dir)?;
    } else if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // `write_atomic`'s temporaries: `.{name}.tmp-{pid}`.
            if name.starts_with('.') && name.contains(".tmp-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Whether `dir` holds a run (a committed checkpoint).
pub fn is_run(dir: &Path) -> bool {
    dir.join(CONFIG).is_file() && dir.join(HISTORY).is_file()
}

/// Checks that `dir` is a run directory (after recovering it), with an error that says what is
/// missing.
pub fn open(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(Error::Checkpoint {
            path: dir.to_path_buf(),
            message: "no such run directory".into(),
        });
    }
    recover(dir)?;
    for name in [CONFIG, PREPROCESSING, MODEL, HISTORY] {
        if !dir.join(name).is_file() {
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                message: format!(
                    "not a complete run directory: {name} is missing (a run writes it after its \
                     first epoch)"
                ),
            });
        }
    }
    Ok(dir.to_path_buf())
}

/// A fresh folder for a run: `base` itself when it does not exist or is empty, else an error
/// (a run never overwrites another).
pub fn create(dir: &Path) -> Result<()> {
    ensure_unused(dir)?;
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// The error [`create`] would give for `dir`, without creating it: a command calls this before
/// it reads its data, so that a taken `--out` is reported at once, not after a long load.
pub fn ensure_unused(dir: &Path) -> Result<()> {
    if dir.exists() {
        // What a run killed before its first checkpoint left is not a run.
        recover(dir)?;
        let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty {
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                message: "already exists and is not empty: choose another --out, or continue \
                          that run with --resume"
                    .into(),
            });
        }
    }
    Ok(())
}

/// The first of `base`, `base-2`, `base-3`, ... that does not exist yet.
pub fn next_free(base: &Path) -> PathBuf {
    if !base.exists() {
        return base.to_path_buf();
    }
    let name = base
        .file_name()
        .map_or("run".into(), |n| n.to_string_lossy().into_owned());
    (2..)
        .map(|i| base.with_file_name(format!("{name}-{i}")))
        .find(|p| !p.exists())
        .expect("an unused name")
}
