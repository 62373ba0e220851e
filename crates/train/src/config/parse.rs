//! Reading a config: TOML syntax and schema errors with the file, line, column and key path,
//! "did you mean" for unknown keys and types, `--set key=value` overrides, and the location of a
//! key for errors found later (a layer that does not fit the data, a value out of range).

use super::Config;
use super::tagged::join_path;
use nabla_data::csv::closest_name;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// A config error: where (file, line, column, key) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    /// 1-based line and column, when the key is in the file.
    pub position: Option<(usize, usize)>,
    /// The key path (`optimizer.lr`, `model.layers[2].units`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.position) {
            (Some(file), Some((line, col))) => write!(f, "{}:{line}:{col}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some((line, col))) => write!(f, "line {line}, column {col}: ",)?,
            (None, None) => {}
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A config as read, with what is needed to locate its keys in the file.
#[derive(Debug, Clone)]
pub struct Located {
    pub config: Config,
    /// The file it was read from (`None` for an embedded config).
    pub file: Option<PathBuf>,
    text: String,
    /// Keys set on the command line (they have no line in the file).
    overridden: Vec<String>,
}

impl Located {
    /// An error about `key` (a dotted path), located at its line in the file.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let mut message = message.into();
        let position = if self
            .overridden
            .iter()
            .any(|o| key.starts_with(o.as_str()) || o.starts_with(key))
        {
            message += " (set on the command line)";
            None
        } else {
            line_of(&self.text, &segments(key))
        };
        ConfigError {
            file: self.file.clone(),
            position,
            key: Some(key.to_string()),
            message,
        }
    }

    /// For options that do not apply together with another: the first of `options` (key,
    /// whether it is set) that is set, as an error at its key saying `why`.
    pub fn refuse_set(&self, options: &[(&str, bool)], why: &str) -> Result<(), ConfigError> {
        match options.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(self.error(key, why)),
            None => Ok(()),
        }
    }
}

impl Located {
    /// Whether `key` (a dotted path) is written in the file or set on the command line, as
    /// opposed to taking its default.
    pub fn is_set(&self, key: &str) -> bool {
        self.overridden
            .iter()
            .any(|o| o == key || o.starts_with(&format!("{key}.")))
            || exact_line_of(&self.text, &segments(key)).is_some()
    }

    /// This config with more keys set (`tune` trials): errors name the key; the keys count as
    /// set on the command line for later errors.
    pub fn with_values(&self, values: &[(String, Value)]) -> Result<Located, ConfigError> {
        let config = with_values(&self.config, values, self.file.as_deref())?;
        let mut overridden = self.overridden.clone();
        overridden.extend(values.iter().map(|(k, _)| canonical(k)));
        Ok(Located {
            config,
            file: self.file.clone(),
            text: self.text.clone(),
            overridden,
        })
    }

    /// An error located at the line of a key given by its parts (for keys with dots inside,
    /// like `tune.space."optimizer.lr"`).
    pub fn error_at_parts(&self, parts: &[&str], message: impl Into<String>) -> ConfigError {
        let segs: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        let key = parts
            .iter()
            .map(|p| {
                if p.contains('.') {
                    format!("{p:?}")
                } else {
                    p.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        ConfigError {
            file: self.file.clone(),
            position: line_of(&self.text, &segs),
            key: Some(key),
            message: message.into(),
        }
    }
}

/// Reads and checks the config at `path`, then applies `overrides` (`key=value`, the value in
/// TOML syntax or a bare string). Relative data paths become relative to the config's folder.
pub fn load(path: &Path, overrides: &[String]) -> Result<Located, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_path_buf()),
        position: None,
        key: None,
        message: format!("cannot read the config: {e}"),
    })?;
    load_text_at(&text, path, overrides)
}

/// [`load`] for a config's text that belongs at `path` (an embedded config): errors name
/// `path`, and relative data paths are taken from its folder.
pub fn load_text_at(text: &str, path: &Path, overrides: &[String]) -> Result<Located, ConfigError> {
    let mut located = load_str(text, Some(path), overrides)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let data = &mut located.config.data;
    let optional = [
        &mut data.train_labels,
        &mut data.test,
        &mut data.test_labels,
    ];
    for p in std::iter::once(&mut data.train).chain(optional.into_iter().flatten()) {
        *p = absolute(&dir.join(&*p));
    }
    Ok(located)
}

/// `path` made absolute (from the working folder) with `.` and `..` resolved lexically, so
/// that a resolved config names its files plainly and works from any folder.
fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in full.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reads and checks a config from text (`file` only names it in errors).
pub fn load_str(
    text: &str,
    file: Option<&Path>,
    overrides: &[String],
) -> Result<Located, ConfigError> {
    let file = file.map(Path::to_path_buf);
    let at_span = |span: Option<std::ops::Range<usize>>| span.map(|s| line_col(text, s.start));
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
        file: file.clone(),
        position: at_span(e.span()),
        key: None,
        message: first_line(e.message()),
    })?;
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let (key, message) = describe(&e.path().to_string(), e.inner().message());
        // The key's own line when it is in the file (serde's span is that of the enclosing
        // table for keys inside a tagged table), else serde's.
        let position = key
            .as_deref()
            .and_then(|k| exact_line_of(text, &segments(k)))
            .or_else(|| at_span(e.inner().span()));
        ConfigError {
            file: file.clone(),
            position,
            key,
            message,
        }
    })?;
    let mut values = Vec::with_capacity(overrides.len());
    for o in overrides {
        values.push(parse_override(o).ok_or_else(|| ConfigError {
            file: None,
            position: None,
            key: None,
            message: format!("--set {o:?}: expected key=value (e.g. optimizer.lr=0.01)"),
        })?);
    }
    let config = with_values(&config, &values, file.as_deref()).map_err(|mut e| {
        if e.position.is_none() && e.file.is_none() {
            let set = overrides.iter().find(|o| {
                o.split_once('=')
                    .is_some_and(|(k, _)| Some(k.trim()) == e.key.as_deref())
            });
            if let Some(o) = set {
                e.message += &format!(" (--set {o})");
            }
        }
        e
    })?;
    let overridden = values.iter().map(|(k, _)| canonical(k)).collect();
    Ok(Located {
        config,
        file,
        text: text.to_string(),
        overridden,
    })
}

/// `config` with `values` set (dotted keys, as `--set`), applied over the config with its
/// defaults filled in so that setting `optimizer.lr` keeps the default optimizer's type. A key
/// that does not exist or a value of the wrong type is an error naming the key.
fn with_values(
    config: &Config,
    values: &[(String, Value)],
    file: Option<&Path>,
) -> Result<Config, ConfigError> {
    if values.is_empty() {
        return Ok(config.clone());
    }
    let mut table = Table::try_from(config).map_err(|e| ConfigError {
        file: file.map(Path::to_path_buf),
        position: None,
        key: None,
        message: e.to_string(),
    })?;
    for (key, value) in values {
        set_value(&mut table, key, value.clone()).map_err(|message| ConfigError {
            file: None,
            position: None,
            key: Some(key.clone()),
            message,
        })?;
    }
    serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
        let (key, message) = describe(&e.path().to_string(), &e.inner().to_string());
        ConfigError {
            file: file.map(Path::to_path_buf),
            position: None,
            key,
            message: message + " (after the overrides)",
        }
    })
}

/// `key=value` as `--set` takes it: the dotted key and the value parsed by [`parse_literal`].
pub fn parse_override(change: &str) -> Option<(String, Value)> {
    let (key, raw) = change.split_once('=')?;
    Some((key.trim().to_string(), parse_literal(raw.trim())))
}

/// A command-line value: TOML (`0.01`, `true`, `[64, 32]`, `"adam"`), else a bare string.
pub fn parse_literal(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

/// Sets `key` (dotted, list items by index: `model.layers.0.units` or `model.layers[0].units`)
/// in a TOML table, creating missing tables on the way. An error says which part is missing.
pub fn set_value(table: &mut Table, key: &str, value: Value) -> Result<(), String> {
    let segs = segments(key);
    let Some((last, parents)) = segs.split_last() else {
        return Err("empty key".into());
    };
    let mut current = Value::Table(std::mem::take(table));
    let result = (|| {
        let mut node = &mut current;
        for (i, seg) in parents.iter().enumerate() {
            let here = segs[..=i].join(".");
            node = match node {
                Value::Table(t) => t
                    .entry(seg.clone())
                    .or_insert_with(|| Value::Table(Table::new())),
                Value::Array(a) => {
                    let len = a.len();
                    seg.parse::<usize>()
                        .ok()
                        .and_then(|n| a.get_mut(n))
                        .ok_or_else(|| format!("`{here}`: no item {seg} (the list has {len})"))?
                }
                other => return Err(format!("`{here}` is a {}, not a table", other.type_str())),
            };
        }
        match node {
            Value::Table(t) => {
                t.insert(last.clone(), value);
                Ok(())
            }
            Value::Array(a) => {
                let len = a.len();
                let slot = last
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| a.get_mut(n))
                    .ok_or_else(|| format!("no item {last} (the list has {len})"))?;
                *slot = value;
                Ok(())
            }
            other => Err(format!(
                "`{}` is a {}, not a table",
                parents.join("."),
                other.type_str()
            )),
        }
    })();
    if let Value::Table(t) = current {
        *table = t;
    }
    result
}

/// `a.b[2].c` and `a.b.2.c` → `["a", "b", "2", "c"]`.
fn segments(key: &str) -> Vec<String> {
    key.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn canonical(key: &str) -> String {
    let mut out = String::new();
    for seg in segments(key) {
        if seg.parse::<usize>().is_ok() {
            out += &format!("[{seg}]");
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out += &seg;
        }
    }
    out
}

fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Joins serde's path with a path from inside a tagged table, and adds "did you mean".
fn describe(path: &str, message: &str) -> (Option<String>, String) {
    let outer = if path == "." { "" } else { path };
    let (key, mut message) = join_path(outer, &first_line(message));
    if let Some(hint) = did_you_mean(&message) {
        message += &hint;
    }
    ((!key.is_empty()).then_some(key), message)
}

/// For "unknown field `lrr`, expected `type` or `lr`": " (did you mean `lr`?)".
fn did_you_mean(message: &str) -> Option<String> {
    let (head, expected) = message.split_once("expected")?;
    if !head.starts_with("unknown") {
        return None;
    }
    let quoted = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let given = quoted(head).into_iter().next()?;
    let candidates = quoted(expected);
    closest_name(&given, &candidates).map(|c| format!(" (did you mean `{c}`?)"))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// The line and column of `key` in the file, when every part of it is there.
fn exact_line_of(text: &str, segs: &[String]) -> Option<(usize, usize)> {
    let (found, position) = locate(text, segs);
    (found == segs.len()).then_some(position).flatten()
}

/// The line and column of `key` in the file, or of its closest enclosing key that is there.
fn line_of(text: &str, segs: &[String]) -> Option<(usize, usize)> {
    locate(text, segs).1
}

/// How many leading parts of `segs` the file has, and where the last of them is.
fn locate(text: &str, segs: &[String]) -> (usize, Option<(usize, usize)>) {
    use toml::de::{DeTable, DeValue};
    let Ok(doc) = DeTable::parse(text) else {
        return (0, None);
    };
    let mut span = None;
    let mut found = 0;
    let mut value: Option<&DeValue> = None;
    let root = doc.get_ref();
    for (i, seg) in segs.iter().enumerate() {
        let next = if i == 0 {
            root.iter()
                .find(|(k, _)| k.get_ref() == seg)
                .map(|(k, v)| (k.span(), v))
        } else {
            match value {
                Some(DeValue::Table(t)) => t
                    .iter()
                    .find(|(k, _)| k.get_ref() == seg)
                    .map(|(k, v)| (k.span(), v)),
                Some(DeValue::Array(a)) => seg
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| a.get(n))
                    .map(|v| (v.span(), v)),
                _ => None,
            }
        };
        let Some((s, v)) = next else { break };
        span = Some(s);
        value = Some(v.get_ref());
        found += 1;
    }
    (found, span.map(|s| line_col(text, s.start)))
}
