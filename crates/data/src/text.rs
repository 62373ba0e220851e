//! A text file as examples for a character-level language model: the characters of the
//! training text form the vocabulary (one class per character), the text becomes class ids, and
//! consecutive windows of `context` ids are the inputs whose targets are the same ids shifted
//! by one (each step predicts the character after it: `x = c[i .. i+T]`, `y = c[i+1 .. i+T+1]`).
//! The windows do not overlap, and each starts from an empty state, so the first steps of a
//! window predict with little context (as in PyTorch's usual char-RNN setup).

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use nabla_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// How a text file becomes examples (`data.text` in a config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    /// Characters per example (the steps backpropagation through time runs over).
    pub context: usize,
    /// Truncated backpropagation through time: training reads the text as one contiguous
    /// stream per batch row ([`TextSpec::stream_dataset`]) and the recurrent state carries from
    /// one batch to the next, so a window starts where the previous one ended instead of from
    /// an empty state. Gradients still stop at the window's start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carry_state: bool,
}

/// The characters a model knows, sorted by code point: character `chars[k]` is class `k`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabulary {
    chars: Vec<char>,
}

/// A text file's contents. Unreadable files and bytes that are not UTF-8 are errors naming the
/// file (and the line and column of the first bad byte).
pub fn read_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..valid];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Error::At {
            path: path.to_path_buf(),
            line,
            column: Some(column.to_string()),
            message: format!(
                "byte 0x{:02x} is not UTF-8 text (save the file as UTF-8)",
                e.as_bytes()[valid]
            ),
        }
    })
}

impl Vocabulary {
    /// The distinct characters of `text`.
    pub fn of(text: &str) -> Vocabulary {
        let chars: BTreeSet<char> = text.chars().collect();
        Vocabulary {
            chars: chars.into_iter().collect(),
        }
    }

    /// How many characters (classes) there are.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The class of `c`, if the vocabulary has it.
    pub fn id(&self, c: char) -> Option<usize> {
        self.chars.binary_search(&c).ok()
    }

    /// The character of class `id`.
    pub fn char(&self, id: usize) -> Option<char> {
        self.chars.get(id).copied()
    }

    /// Each class as a readable name (`a`, `space`, `\n`), for reports and error messages.
    pub fn names(&self) -> Vec<String> {
        self.chars.iter().map(|&c| display_char(c)).collect()
    }

    /// The class ids of `text`; `file` names it in errors. A character the vocabulary lacks is
    /// an error naming its line and column: the model has no output for it.
    pub fn encode(&self, text: &str, file: &Path) -> Result<Vec<usize>> {
        let mut ids = Vec::with_capacity(text.len());
        let (mut line, mut column) = (1u64, 0usize);
        for c in text.chars() {
            column += 1;
            match self.id(c) {
                Some(k) => ids.push(k),
                None => {
                    return Err(Error::At {
                        path: file.to_path_buf(),
                        line,
                        column: Some(column.to_string()),
                        message: format!(
                            "character {} (U+{:04X}) never occurs in the training text, so \
                             the model has no class for it",
                            display_char(c),
                            c as u32
                        ),
                    });
                }
            }
            if c == '\n' {
                (line, column) = (line + 1, 0);
            }
        }
        Ok(ids)
    }

    /// The text of class ids (ids outside the vocabulary are skipped).
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter().filter_map(|&k| self.char(k)).collect()
    }
}

fn display_char(c: char) -> String {
    match c {
        ' ' => "space".into(),
        c if c.is_control() => c.escape_default().to_string(),
        c => c.to_string(),
    }
}

impl TextSpec {
    /// The examples of `ids` (the class ids of a text, in order): `⌊(len − 1) / context⌋`
    /// windows `x: [n, context]` (ids as f32, for an embedding) with targets `y: [n, context]`
    /// (i64), `y[i][t] = x[i][t + 1]` and the last step's target the id after the window. The
    /// last `(len − 1) mod context` ids are not predicted. `what` names the text in errors.
    pub fn dataset(&self, ids: &[usize], what: &str) -> Result<Dataset> {
        // One stream: its windows in order.
        self.stream_dataset(ids, 1, what)
    }

    /// The examples of `ids` as `streams` contiguous stretches read side by side, for batches
    /// of `streams` rows that carry the recurrent state from one to the next: row
    /// `j * streams + s` is window `j` of stretch `s`, so unshuffled batch `j` holds window `j`
    /// of every stretch and batch `j + 1` continues each row where batch `j` ended. Each stretch
    /// has `⌊(len − 1) / streams⌋` predictions cut into `⌊that / context⌋` windows; the rest
    /// of a stretch, and the last `(len − 1) mod streams` ids, are not predicted.
    pub fn stream_dataset(&self, ids: &[usize], streams: usize, what: &str) -> Result<Dataset> {
        let t = self.context;
        if t == 0 {
            return Err(Error::Invalid(
                "data.text.context must be at least 1".into(),
            ));
        }
        if streams == 0 {
            return Err(Error::Invalid(
                "the number of streams must be at least 1".into(),
            ));
        }
        let stretch = ids.len().saturating_sub(1) / streams;
        let windows = stretch / t;
        if windows == 0 {
            let window = format!("window of {t} and the character after it");
            let room = if streams == 1 {
                format!("one {window}")
            } else {
                format!(
                    "{streams} streams (one per batch row) of at least one {window} ({} \
                     characters)",
                    streams * t + 1
                )
            };
            return Err(Error::Invalid(format!(
                "{what} has {} characters, too few for {room}",
                ids.len()
            )));
        }
        let rows = windows * streams;
        let mut x = Vec::with_capacity(rows * t);
        let mut y = Vec::with_capacity(rows * t);
        for j in 0..windows {
            for s in 0..streams {
                let start = s * stretch + j * t;
                x.extend(ids[start..start + t].iter().map(|&k| k as f32));
                y.extend(ids[start + 1..=start + t].iter().map(|&k| k as i64));
            }
        }
        Dataset::new(
            Tensor::from_vec(x, [rows, t])?,
            Tensor::from_vec(y, [rows, t])?,
        )
    }

    /// Where a text of `len` characters splits, in order: training first, then validation (the
    /// `valid_fraction` before the test), then the test (the last `test_fraction`). Contiguous
    /// stretches: a held-out window never shares characters with a training one.
    pub fn split(
        &self,
        len: usize,
        valid_fraction: f64,
        test_fraction: f64,
    ) -> Result<[std::ops::Range<usize>; 3]> {
        for (name, f) in [("validation", valid_fraction), ("test", test_fraction)] {
            if !(0.0..1.0).contains(&f) {
                return Err(Error::Invalid(format!(
                    "the {name} fraction must be in [0, 1), got {f}"
                )));
            }
        }
        let test = (len as f64 * test_fraction).round() as usize;
        let valid = (len as f64 * valid_fraction).round() as usize;
        if test + valid >= len {
            return Err(Error::Invalid(format!(
                "the validation and test fractions take all {len} characters"
            )));
        }
        let train_end = len - test - valid;
        Ok([0..train_end, train_end..len - test, len - test..len])
    }
}
