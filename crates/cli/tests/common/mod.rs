//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

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
