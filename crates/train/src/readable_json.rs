//! JSON for people as well as programs: serde_json's pretty layout, with each array of numbers,
//! strings, booleans or nulls on one line (`"counts": [0, 3, 17]`) instead of one element per
//! line. A run's history holds thousands of such values (per-layer histograms, class counts),
//! and one per line made `history.json` three times the size and hard to read.

use serde::Serialize;

/// `value` as readable JSON (see the module).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    Ok(one_line_arrays(&serde_json::to_string_pretty(value)?).into_bytes())
}

/// serde_json's pretty text with every array of scalars joined onto its opening line. In that
/// text a line that ends with `[` opens an array (a string's brackets sit inside quotes), and
/// its elements are one per line until the line that starts with `]`; an element line that
/// ends with `{` or `[` opens a container, and such an array keeps its layout.
fn one_line_arrays(pretty: &str) -> String {
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out = String::with_capacity(pretty.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.ends_with('[')
            && let Some(close) = scalar_array_end(&lines, i + 1)
        {
            let elements: Vec<&str> = lines[i + 1..close].iter().map(|l| l.trim()).collect();
            out += line;
            out += &elements.join(" ");
            out += lines[close].trim_start();
            out.push('\n');
            i = close + 1;
            continue;
        }
        out += line;
        out.push('\n');
        i += 1;
    }
    out.pop();
    out
}

/// The index of the line closing the array whose elements start at `lines[start]`, if every
/// element is a scalar.
fn scalar_array_end(lines: &[&str], start: usize) -> Option<usize> {
    for (j, line) in lines.iter().enumerate().skip(start) {
        let t = line.trim();
        if t.starts_with(']') {
            return Some(j);
        }
        if t.ends_with('[') || t.ends_with('{') {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn arrays_of_scalars_take_one_line_and_containers_keep_theirs() {
        let v = json!({
            "counts": [0, 3, 17],
            "names": ["a [b", "c]", "{d"],
            "empty": [],
            "rows": [[1, 2], [3]],
            "records": [{"x": [1.5, null, true]}],
        });
        let text = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        for line in [
            r#"  "counts": [0, 3, 17],"#,
            r#"  "names": ["a [b", "c]", "{d"],"#,
            r#"  "empty": [],"#,
            "    [1, 2],",
            "    [3]",
            r#"      "x": [1.5, null, true]"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(text.contains("\"rows\": [\n"), "{text}");
    }

    /// Any JSON value: nested arrays and objects of numbers, strings with brackets and
    /// escapes, booleans and nulls.
    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e9f64..1e9).prop_map(|x| json!(x)),
            "[\\[\\]{}\",\\\\ a-z\n]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\\[\\]]{0,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reads_back_as_the_same_value(v in any_value()) {
            let bytes = to_vec(&v).unwrap();
            prop_assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), v);
        }
    }
}
