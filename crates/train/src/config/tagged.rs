//! Serde for "type"-tagged tables (`{ type = "linear", units = 64 }`), the form users write,
//! with errors that keep the key path inside the table (`units: invalid value ...`).
//!
//! Serde's own internally tagged enums buffer the table before choosing the variant, which loses
//! the path of a bad key. Instead the table is rewritten to the externally tagged form
//! (`{ linear = { units = 64 } }`) and deserialized with `serde_path_to_error`; serialization
//! does the reverse. The enums themselves derive plain (externally tagged) serde.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::{Table, Value};

/// The message prefix that marks a path inside a tagged table (joined to the outer path when the
/// error is reported; see `parse::describe`).
pub(crate) const INNER_PATH: char = '\u{1}';

/// Joins the path `outer` (may be empty) and an error message that may start with a path from
/// a deeper tagged table: `("layers", "\u{1}[0].unit: unknown")` gives
/// `("layers[0].unit", "unknown")`.
pub(crate) fn join_path(outer: &str, message: &str) -> (String, String) {
    match message.strip_prefix(INNER_PATH) {
        Some(rest) => {
            let (inner, msg) = rest.split_once(": ").unwrap_or((rest, ""));
            let sep = if outer.is_empty() || inner.starts_with('[') {
                ""
            } else {
                "."
            };
            (format!("{outer}{sep}{inner}"), msg.to_string())
        }
        None => (outer.to_string(), message.to_string()),
    }
}

/// An error message carrying a path (`\u{1}{path}: {message}`), or the bare message.
fn with_path(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{INNER_PATH}{path}: {message}")
    }
}

fn from_table<T: DeserializeOwned>(mut table: Table) -> Result<T, String> {
    let kind = match table.remove("type") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!("`type` must be a string, got {}", other.type_str()));
        }
        None => return Err("missing key `type`".into()),
    };
    let tagged = Value::Table(Table::from_iter([(kind.clone(), Value::Table(table))]));
    serde_path_to_error::deserialize(tagged).map_err(|e| {
        // The first path segment is the variant (the `type` value) itself.
        let path = e.path().to_string();
        let inner = path.split_once('.').map_or("", |(_, rest)| rest);
        // toml appends "in `key`" on a second line; the path already says it.
        let message = e.inner().to_string();
        let mut message = message.lines().next().unwrap_or_default().to_string();
        if message == "expected empty table" {
            message = format!("type \"{kind}\" takes no options");
        } else if message.starts_with("unknown variant") {
            message = message.replacen("unknown variant", "unknown type", 1);
            return with_path("type", &message);
        }
        let (path, message) = join_path(inner, &message);
        with_path(&path, &message)
    })
}

fn to_table<T: Serialize>(value: &T) -> Result<Table, String> {
    match Value::try_from(value).map_err(|e| e.to_string())? {
        Value::String(kind) => Ok(Table::from_iter([("type".into(), Value::String(kind))])),
        Value::Table(t) if t.len() == 1 => {
            let (kind, options) = t.into_iter().next().expect("one entry");
            let mut out = Table::from_iter([("type".to_string(), Value::String(kind))]);
            if let Value::Table(options) = options {
                out.extend(options);
            }
            Ok(out)
        }
        other => Err(format!("not a tagged value: {other}")),
    }
}

/// `deserialize_with` for a tagged `T`.
pub fn de<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    from_table(Table::deserialize(d)?).map_err(D::Error::custom)
}

/// `serialize_with` for a tagged `T`.
pub fn ser<S: Serializer, T: Serialize>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    to_table(value).map_err(S::Error::custom)?.serialize(s)
}

/// `deserialize_with` for a list of tagged `T`: the error names the item (`[2].units: ...`).
pub fn de_vec<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Table>::deserialize(d)?
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            from_table(t).map_err(|m| {
                let m = m
                    .strip_prefix(INNER_PATH)
                    .map_or(format!(": {m}"), |m| format!(".{m}"));
                D::Error::custom(format!("{INNER_PATH}[{i}]{m}"))
            })
        })
        .collect()
}

/// `serialize_with` for a list of tagged `T`.
pub fn ser_vec<S: Serializer, T: Serialize>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    values
        .iter()
        .map(to_table)
        .collect::<Result<Vec<_>, _>>()
        .map_err(S::Error::custom)?
        .serialize(s)
}

/// `deserialize_with` for an optional tagged `T` (use with `#[serde(default)]`).
pub fn de_opt<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    de(d).map(Some)
}

/// `serialize_with` for an optional tagged `T` (use with `skip_serializing_if = "Option::is_none"`).
pub fn ser_opt<S: Serializer, T: Serialize>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => ser(v, s),
        None => s.serialize_none(),
    }
}
