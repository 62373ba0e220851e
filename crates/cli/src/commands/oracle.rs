//! Reading the reference files in `shared/oracle/` (shared by `check-grads` and `check-optim`).

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::path::Path;

/// Reads a JSON oracle file, checks its `"format"` and returns the document and its `"cases"`.
pub fn load(path: &Path, format: &str) -> Result<(Value, Vec<Value>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    match doc.get("format").and_then(Value::as_str) {
        Some(f) if f == format => {}
        other => bail!(
            "{}: expected \"format\": \"{format}\", found {other:?}",
            path.display()
        ),
    }
    let cases = doc
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{}: no \"cases\" array", path.display()))?
        .clone();
    Ok((doc, cases))
}

/// The verdict on one case: `Ok(())` or the first disagreement.
pub struct Verdict {
    pub id: String,
    pub outcome: std::result::Result<(), String>,
}

/// Prints one line per case and the summary `N passed, M failed`; returns the failure count.
pub fn report(verdicts: &[Verdict], out: &mut dyn std::io::Write) -> std::io::Result<usize> {
    let failed = verdicts.iter().filter(|v| v.outcome.is_err()).count();
    for v in verdicts {
        match &v.outcome {
            Ok(()) => writeln!(out, "ok     {}", v.id)?,
            Err(e) => writeln!(out, "FAILED {}: {e}", v.id)?,
        }
    }
    writeln!(out, "{} passed, {failed} failed", verdicts.len() - failed)?;
    Ok(failed)
}
