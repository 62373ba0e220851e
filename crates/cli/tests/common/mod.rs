//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file of the PyTorch reference cases in `shared/oracle/` beside the repository (override the
/// folder with NABLA_ORACLE_DIR).
pub fn oracle(file: &str) -> PathBuf {
    let dir = std::env::var_os("NABLA_ORACLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracle")
        });
    let path = dir.join(file);
    assert!(
        path.exists(),
        "{} is missing: the oracle cases live in shared/oracle beside the repository (or set NABLA_ORACLE_DIR)",
        path.display()
    );
    path
}

/// A JSON file (a run's `history.json`, an oracle file), parsed; a test failure naming the
/// file when it is missing or malformed.
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON Lines file (a run's `metrics.jsonl`), one value per line.
pub fn read_json_lines(path: impl AsRef<Path>) -> Vec<serde_json::Value> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Runs the `nabla` binary: (exit code, stdout, stderr).
pub fn nabla(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .output()
        .expect("run nabla");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs `nabla ARGS`, which must succeed (see [`run`]): its standard output.
pub fn nabla_ok(args: &[&str]) -> String {
    stdout(&run(Command::new(env!("CARGO_BIN_EXE_nabla")).args(args)))
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh, empty scratch folder for one test (`name`) of this process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nabla-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a command that must succeed (else the test fails with its stderr).
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("runs");
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs a command that must reject its input: exit code 2 and one line on stderr, returned.
pub fn rejects(cmd: &mut Command) -> String {
    let err = refuses_arguments(cmd);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// Runs a command whose arguments the parser must refuse: exit code 2, and stderr returned
/// (clap's error, followed by a hint line).
pub fn refuses_arguments(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
    err
}

/// `nabla train -q CONFIG --out OUT` with each of `sets` as `--set` must reject the config:
/// its one-line error (see [`rejects`]).
pub fn rejects_overrides(config: &Path, out: &Path, sets: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nabla"));
    cmd.args(["train", "-q", "--out"]).arg(out).arg(config);
    for set in sets {
        cmd.args(["--set", set]);
    }
    rejects(&mut cmd)
}

/// A command's standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` as a child process, killed with SIGKILL after `kill_after` when given (a crash
/// at that moment); returns whether it finished successfully. Without a kill it must succeed.
pub fn run_maybe_killed(cmd: &mut Command, kill_after: Option<std::time::Duration>) -> bool {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(after) = kill_after {
        let start = std::time::Instant::now();
        while start.elapsed() < after && child.try_wait().unwrap().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let _ = child.kill(); // SIGKILL
    }
    let out = child.wait_with_output().unwrap();
    if kill_after.is_none() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}
