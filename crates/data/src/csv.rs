//! CSV with a header row: features and target chosen by column name, numbers parsed with errors
//! that name the file, line and column, categorical columns one-hot encoded when asked, missing
//! values an error unless the caller keeps them (as NaN) for an imputer.
//!
//! Reading a training file gives a [`CsvSchema`] (column kinds, categories, class names) as
//! well as the table; validation, test and prediction files are read *with* that schema, so that
//! they are encoded exactly as the training data was.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// Whether the target holds classes or real values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Classification,
    Regression,
}

/// What to do with a missing value (an empty field, `NA`, `N/A`, `NaN`, `null` or `?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Stop with an error naming the line and column (the default).
    #[default]
    Error,
    /// Keep it as NaN, for an imputer fitted on the training split (see `preprocess`).
    Keep,
}

/// How to read a training CSV.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// The target column; default: the last column.
    pub target: Option<String>,
    /// The feature columns, in this order; default: every column but the target.
    pub features: Option<Vec<String>>,
    /// Feature columns holding categories (strings): one-hot encoded, one 0/1 feature per
    /// category seen in the training file, named `column=category`.
    pub categorical: Vec<String>,
    /// Classification (class labels: integers 0..K-1 or strings) or regression (numbers).
    pub task: Option<Task>,
    /// Missing-value policy for features (a missing target is always an error).
    pub missing: Missing,
}

/// One feature column of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureColumn {
    pub name: String,
    /// `None` for a numeric column; the categories (sorted) of a one-hot encoded column.
    pub categories: Option<Vec<String>>,
}

impl FeatureColumn {
    /// How many values the column encodes to: 1, or one per category (one-hot).
    pub fn width(&self) -> usize {
        self.categories.as_ref().map_or(1, Vec::len)
    }
}

/// How a CSV was encoded: what a model trained on it expects of later files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvSchema {
    /// Saved as `{"pixels": N}` when they are an image's `p0 … p(N−1)` (a 224x224 RGB image
    /// would otherwise list 150,528 of them).
    #[serde(with = "saved_features")]
    pub features: Vec<FeatureColumn>,
    pub target: String,
    pub task: Task,
    /// Class names in index order (classification only): `["0", "1", ...]` for integer labels,
    /// the sorted distinct strings otherwise.
    pub classes: Vec<String>,
    pub missing: Missing,
}

/// `width` numeric columns named `p0, p1, ...`: the pixels of an image.
fn pixel_columns(width: usize) -> Vec<FeatureColumn> {
    (0..width)
        .map(|i| FeatureColumn {
            name: format!("p{i}"),
            categories: None,
        })
        .collect()
}

/// A schema's feature columns as a run folder saves them: an image's pixel columns by their
/// count, any others listed. Both forms read back; a file that lists pixel columns (as runs
/// saved before the count was) still loads.
mod saved_features {
    use super::{FeatureColumn, pixel_columns};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Saved {
        Pixels { pixels: usize },
        Listed(Vec<FeatureColumn>),
    }

    pub fn serialize<S: Serializer>(
        features: &[FeatureColumn],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let pixels = !features.is_empty()
            && features
                .iter()
                .enumerate()
                .all(|(i, f)| f.categories.is_none() && f.name == format!("p{i}"));
        if pixels {
            Saved::Pixels {
                pixels: features.len(),
            }
            .serialize(serializer)
        } else {
            features.serialize(serializer)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<FeatureColumn>, D::Error> {
        Ok(
            match Saved::deserialize(deserializer).map_err(|_| {
                D::Error::custom("expected a list of feature columns or {\"pixels\": count}")
            })? {
                Saved::Pixels { pixels } => pixel_columns(pixels),
                Saved::Listed(features) => features,
            },
        )
    }
}

impl CsvSchema {
    /// The schema of images classified into `classes`: `width` pixel values named `p0, p1,
    /// ...`, none missing, and the target column `target` (a CSV of the same pixels with that
    /// column reads the same).
    pub fn pixels(width: usize, target: &str, classes: Vec<String>) -> CsvSchema {
        CsvSchema {
            features: pixel_columns(width),
            target: target.into(),
            task: Task::Classification,
            classes,
            missing: Missing::Error,
        }
    }

    /// The names of the encoded feature columns: a numeric column's name, and `name=category`
    /// for each one-hot column of a categorical one.
    pub fn encoded_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for f in &self.features {
            match &f.categories {
                None => names.push(f.name.clone()),
                Some(cats) => names.extend(cats.iter().map(|c| format!("{}={c}", f.name))),
            }
        }
        names
    }
}

/// The target values of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Class indices `0..K-1`.
    Classes(Vec<i64>),
    /// Real values (regression).
    Values(Vec<f64>),
    /// No target column (a file to predict on).
    None,
}

/// A numeric table: `rows x feature_names.len()` features, row-major, and the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub feature_names: Vec<String>,
    pub features: Vec<f64>,
    pub rows: usize,
    pub target: Target,
    /// The line of its file each row starts on, where the rows are a CSV's (a sequence: its
    /// first row's); `None` for other sources. Blank lines and quoted line breaks make it
    /// differ from the row's index.
    pub lines: Option<Vec<u64>>,
}

impl Table {
    /// Number of (encoded) features per row.
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// The rows at `rows`, in that order (a copy).
    pub fn select(&self, rows: &[usize]) -> Table {
        let w = self.width();
        let mut features = Vec::with_capacity(rows.len() * w);
        for &r in rows {
            features.extend_from_slice(&self.features[r * w..(r + 1) * w]);
        }
        Table {
            feature_names: self.feature_names.clone(),
            features,
            rows: rows.len(),
            target: self.target.select(rows),
            lines: select_lines(&self.lines, rows),
        }
    }

    /// The line of its file row `r` starts on: the CSV's own count, else the count for a
    /// header and one line per row.
    pub fn line(&self, r: usize) -> u64 {
        self.lines.as_ref().map_or(r as u64 + 2, |lines| lines[r])
    }

    /// The rows at `rows` (distinct), in that order, moved within the table's own buffer
    /// rather than copied: the training split of a large table (MNIST's 47 M values) is not
    /// held beside the whole. The rows left out are dropped and their memory given back.
    pub fn into_rows(mut self, rows: &[usize]) -> Table {
        let (n, w) = (self.rows, self.width());
        // Complete `rows` to a permutation of 0..n: position i takes old row order[i].
        let mut chosen = vec![false; n];
        for &r in rows {
            chosen[r] = true;
        }
        let mut order = rows.to_vec();
        order.extend((0..n).filter(|&r| !chosen[r]));
        if order.len() != n {
            // A repeated row: not a permutation, so copy.
            return self.select(rows);
        }
        // Follow each cycle of the permutation with one row held aside.
        let mut placed = vec![false; n];
        let mut held = vec![0.0; w];
        for start in 0..n {
            if placed[start] || order[start] == start {
                continue;
            }
            held.copy_from_slice(&self.features[start * w..(start + 1) * w]);
            let mut i = start;
            while order[i] != start {
                let from = order[i];
                self.features.copy_within(from * w..(from + 1) * w, i * w);
                placed[i] = true;
                i = from;
            }
            self.features[i * w..(i + 1) * w].copy_from_slice(&held);
            placed[i] = true;
        }
        self.features.truncate(rows.len() * w);
        self.features.shrink_to_fit();
        self.target = self.target.select(rows);
        self.lines = select_lines(&self.lines, rows);
        self.rows = rows.len();
        self
    }
}

fn select_lines(lines: &Option<Vec<u64>>, rows: &[usize]) -> Option<Vec<u64>> {
    lines.as_ref().map(|l| rows.iter().map(|&r| l[r]).collect())
}

impl Target {
    /// The targets at `rows`, in that order.
    fn select(&self, rows: &[usize]) -> Target {
        match self {
            Target::Classes(c) => Target::Classes(rows.iter().map(|&r| c[r]).collect()),
            Target::Values(v) => Target::Values(rows.iter().map(|&r| v[r]).collect()),
            Target::None => Target::None,
        }
    }
}

const MISSING: [&str; 7] = ["", "NA", "N/A", "NaN", "nan", "null", "?"];

fn is_missing(s: &str) -> bool {
    MISSING.contains(&s)
}

fn at(path: &Path, line: u64, column: Option<(&str, usize)>, message: String) -> Error {
    Error::At {
        path: path.to_path_buf(),
        line,
        column: column.map(|(name, i)| format!("{name:?} ({})", i + 1)),
        message,
    }
}

/// A parsed file: header and rows of trimmed strings, with their line numbers.
struct RawCsv {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

fn read_raw(path: &Path) -> Result<RawCsv> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    parse_raw(path, file)
}

/// How much of a file's start is looked at to choose its delimiter.
const SNIFFED_BYTES: usize = 1 << 16;

/// Parses CSV text from `input`; `path` names it in errors. The fields are separated by
/// commas, or by the delimiter [`sniffed_delimiter`] finds in the first line.
fn parse_raw(path: &Path, input: impl std::io::Read) -> Result<RawCsv> {
    use std::io::BufRead;
    let mut input = std::io::BufReader::with_capacity(SNIFFED_BYTES, input);
    let delimiter = sniffed_delimiter(input.fill_buf().map_err(Error::io(path))?);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .trim(::csv::Trim::All)
        .from_reader(LineMap::new(input));
    let csv_error = |e: ::csv::Error, lines: &LineMap<_>| {
        let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
        match e.kind() {
            ::csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => at(
                path,
                line,
                None,
                format!("{len} fields, but the header has {expected_len}"),
            ),
            ::csv::ErrorKind::Utf8 { .. } => at(path, line, None, "not valid UTF-8".into()),
            ::csv::ErrorKind::Io(_) => Error::file(path, e.to_string()),
            _ => at(path, line, None, e.to_string()),
        }
    };
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(str::to_string).collect(),
        Err(e) => return Err(csv_error(e, reader.get_ref())),
    };
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(Error::file(path, "empty file: expected a header row"));
    }
    let mut seen = BTreeSet::new();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(at(
                path,
                1,
                None,
                format!("column {} has an empty name", i + 1),
            ));
        }
        if !seen.insert(h.as_str()) {
            return Err(at(
                path,
                1,
                None,
                format!("column name {h:?} appears twice"),
            ));
        }
    }
    let mut rows = Vec::new();
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, reader.get_ref())),
        }
        let line = record
            .position()
            .map_or(0, |p| reader.get_ref().line_at(p.byte()));
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    if rows.is_empty() {
        return Err(Error::file(path, "no data rows after the header"));
    }
    Ok(RawCsv { header, rows })
}

/// The delimiter of a file that starts with `head`: a comma, unless its first line has none
/// and has semicolons (the CSV of spreadsheets in locales with decimal commas) or tabs (TSV).
/// A header without a comma read with commas would be one column, which nabla cannot use.
fn sniffed_delimiter(head: &[u8]) -> u8 {
    // The first line's bytes outside quotes (a quoted name may hold any of them).
    let mut quoted = false;
    let first: Vec<u8> = head
        .iter()
        .copied()
        .filter(|&b| {
            quoted ^= b == b'"';
            !quoted && b != b'"'
        })
        .take_while(|&b| b != b'\n')
        .collect();
    let count = |d: u8| first.iter().filter(|&&b| b == d).count();
    match (count(b','), count(b';'), count(b'\t')) {
        (0, semicolons, tabs) if semicolons > 0 && semicolons >= tabs => b';',
        (0, _, tabs) if tabs > 0 => b'\t',
        _ => b',',
    }
}

/// A reader that notes where the lines of what it reads end and which are blank, so that a
/// record gets the line it is on. The csv crate numbers a record by where its parse began:
/// after blank lines, which it skips, that is the first of them (rust-csv #208), and with
/// `\r\n` line ends it is the line before, as the parse begins at its `\n` (#395).
struct LineMap<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
    /// The offset of every `\n` read, in order.
    newlines: Vec<u64>,
    /// The lines (from 1) that are empty or hold a lone `\r`, in order.
    blank: Vec<u64>,
    /// Whether the line being read has anything besides `\r`.
    content: bool,
}

impl<R> LineMap<R> {
    fn new(inner: R) -> Self {
        LineMap {
            inner,
            offset: 0,
            newlines: Vec::new(),
            blank: Vec::new(),
            content: false,
        }
    }

    /// The line of the record whose parse began at `byte`: the line that byte is on, or the
    /// next when it is a line's `\n`; then past any blank lines.
    fn line_at(&self, byte: u64) -> u64 {
        let before = self.newlines.partition_point(|&n| n < byte);
        let mut line = before as u64 + 1;
        if self.newlines.get(before) == Some(&byte) {
            line += 1;
        }
        while self.blank.binary_search(&line).is_ok() {
            line += 1;
        }
        line
    }
}

impl<R: std::io::Read> std::io::Read for LineMap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', chunk) {
            let line = &chunk[start..end];
            if !self.content && line.iter().all(|&b| b == b'\r') {
                self.blank.push(self.newlines.len() as u64 + 1);
            }
            self.newlines.push(self.offset + end as u64);
            self.content = false;
            start = end + 1;
        }
        self.content |= chunk[start..].iter().any(|&b| b != b'\r');
        self.offset += n as u64;
        Ok(n)
    }
}

fn column_index(path: &Path, header: &[String], name: &str, role: &str) -> Result<usize> {
    header.iter().position(|h| h == name).ok_or_else(|| {
        let closest = closest_name(name, header)
            .map(|c| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default();
        at(
            path,
            1,
            None,
            format!(
                "no {role} column {name:?}{closest}; the columns are {}",
                listed(header)
            ),
        )
    })
}

/// Names (columns, categories, classes) for an error: all of them, or of a long list (784
/// pixel columns) the first and last few and how many lie between.
pub(crate) fn listed(names: &[String]) -> String {
    const SHOWN: usize = 12;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    let (head, tail) = (&names[..SHOWN - 2], &names[names.len() - 2..]);
    format!(
        "{}, … ({} more), {} ({} in all)",
        head.join(", "),
        names.len() - SHOWN,
        tail.join(", "),
        names.len()
    )
}

/// The candidate closest to `name` by edit distance, if reasonably close.
pub fn closest_name<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Reads a training CSV: chooses columns, infers categories and classes, and returns the table
/// with the schema that later files must be read with.
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<(Table, CsvSchema)> {
    let path = path.as_ref();
    table_and_schema(path, read_raw(path)?, options)
}

/// [`read_csv`] for CSV text from any reader (a network stream, bytes in memory); `name`
/// stands for the file in errors.
pub fn read_csv_from(
    name: impl AsRef<Path>,
    input: impl std::io::Read,
    options: &CsvOptions,
) -> Result<(Table, CsvSchema)> {
    let name = name.as_ref();
    table_and_schema(name, parse_raw(name, input)?, options)
}

fn table_and_schema(path: &Path, raw: RawCsv, options: &CsvOptions) -> Result<(Table, CsvSchema)> {
    let target = match &options.target {
        Some(t) => t.clone(),
        None => raw.header.last().expect("non-empty header").clone(),
    };
    let target_index = column_index(path, &raw.header, &target, "target")?;
    let feature_names: Vec<String> = match &options.features {
        Some(f) => f.clone(),
        None => raw
            .header
            .iter()
            .filter(|h| **h != target)
            .cloned()
            .collect(),
    };
    if feature_names.is_empty() {
        return Err(Error::file(path, "no feature columns (only the target)"));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = feature_names.iter().find(|f| !seen.insert(f.as_str())) {
        return Err(Error::file(
            path,
            format!("feature column {dup:?} is listed twice"),
        ));
    }
    for c in &options.categorical {
        if !feature_names.contains(c) {
            return Err(Error::file(
                path,
                format!("categorical column {c:?} is not one of the feature columns"),
            ));
        }
    }
    let mut features = Vec::new();
    for name in &feature_names {
        let i = column_index(path, &raw.header, name, "feature")?;
        if i == target_index {
            return Err(Error::file(
                path,
                format!("column {name:?} is both a feature and the target"),
            ));
        }
        let categories = if options.categorical.contains(name) {
            let set: BTreeSet<&str> = raw
                .rows
                .iter()
                .map(|(_, r)| r[i].as_str())
                .filter(|v| !is_missing(v))
                .collect();
            Some(set.into_iter().map(str::to_string).collect())
        } else {
            None
        };
        features.push(FeatureColumn {
            name: name.clone(),
            categories,
        });
    }
    let task = options.task.unwrap_or(Task::Classification);
    let classes = match task {
        Task::Regression => Vec::new(),
        Task::Classification => infer_classes(path, &raw, target_index, &target)?,
    };
    let schema = CsvSchema {
        features,
        target,
        task,
        classes,
        missing: options.missing,
    };
    let table = encode(path, &raw, &schema, true)?;
    Ok((table, schema))
}

/// Reads a later file (validation, test, prediction) with a training file's schema. When
/// `with_target` is false the target column may be absent (prediction).
pub fn read_csv_with(
    path: impl AsRef<Path>,
    schema: &CsvSchema,
    with_target: bool,
) -> Result<Table> {
    let path = path.as_ref();
    let raw = read_raw(path)?;
    encode(path, &raw, schema, with_target)
}

/// [`read_csv_with`] for CSV text from any reader; `name` stands for the file in errors.
pub fn read_csv_with_from(
    name: impl AsRef<Path>,
    input: impl std::io::Read,
    schema: &CsvSchema,
    with_target: bool,
) -> Result<Table> {
    let name = name.as_ref();
    encode(name, &parse_raw(name, input)?, schema, with_target)
}

/// Class names: integers 0..K-1 when every label is a non-negative integer, else the sorted
/// distinct strings.
fn infer_classes(path: &Path, raw: &RawCsv, index: usize, name: &str) -> Result<Vec<String>> {
    let col = Some((name, index));
    for (line, row) in &raw.rows {
        let v = row[index].as_str();
        if is_missing(v) {
            return Err(at(path, *line, col, "missing target value".into()));
        }
        if v.parse::<f64>().is_ok_and(|f| f.fract() != 0.0) {
            return Err(at(
                path,
                *line,
                col,
                format!(
                    "class label {v:?} is not an integer; for a real-valued target choose \
                     the regression task"
                ),
            ));
        }
    }
    let ints: Option<Vec<i64>> = raw
        .rows
        .iter()
        .map(|(_, r)| r[index].parse::<i64>().ok().filter(|k| *k >= 0))
        .collect();
    match ints {
        Some(ints) => {
            let k = ints.iter().max().map_or(0, |m| m + 1);
            if k > 100_000 {
                return Err(Error::file(
                    path,
                    format!(
                        "class labels go up to {}: is this a regression target?",
                        k - 1
                    ),
                ));
            }
            Ok((0..k).map(|c| c.to_string()).collect())
        }
        None => {
            let set: BTreeSet<&str> = raw.rows.iter().map(|(_, r)| r[index].as_str()).collect();
            Ok(set.into_iter().map(str::to_string).collect())
        }
    }
}

fn encode(path: &Path, raw: &RawCsv, schema: &CsvSchema, with_target: bool) -> Result<Table> {
    let mut columns = Vec::new();
    let names = schema.encoded_names();
    for f in &schema.features {
        let i = column_index(path, &raw.header, &f.name, "feature")?;
        columns.push((i, f));
    }
    let target_index = if with_target || raw.header.contains(&schema.target) {
        Some(column_index(path, &raw.header, &schema.target, "target")?)
    } else {
        None
    };
    let width = names.len();
    let mut features = Vec::with_capacity(raw.rows.len() * width);
    let mut classes = Vec::new();
    let mut values = Vec::new();
    for (line, row) in &raw.rows {
        for (i, f) in &columns {
            let v = row[*i].as_str();
            let col = Some((f.name.as_str(), *i));
            if is_missing(v) {
                if schema.missing == Missing::Error {
                    return Err(at(
                        path,
                        *line,
                        col,
                        "missing value (choose an imputation to fill missing values)".into(),
                    ));
                }
                features.extend(std::iter::repeat_n(f64::NAN, f.width()));
                continue;
            }
            match &f.categories {
                None => features.push(parse_number(path, *line, col, v)?),
                Some(cats) => {
                    let k = cats.iter().position(|c| c == v).ok_or_else(|| {
                        at(
                            path,
                            *line,
                            col,
                            format!(
                                "category {v:?} was not seen in the training data (known: {})",
                                listed(cats)
                            ),
                        )
                    })?;
                    features.extend((0..cats.len()).map(|j| if j == k { 1.0 } else { 0.0 }));
                }
            }
        }
        let Some(ti) = target_index else { continue };
        let v = row[ti].as_str();
        let col = Some((schema.target.as_str(), ti));
        if is_missing(v) {
            return Err(at(path, *line, col, "missing target value".into()));
        }
        match schema.task {
            Task::Regression => values.push(parse_number(path, *line, col, v)?),
            Task::Classification => {
                let k = schema.classes.iter().position(|c| c == v).ok_or_else(|| {
                    at(
                        path,
                        *line,
                        col,
                        format!(
                            "class {v:?} is not one of the training classes ({})",
                            listed(&schema.classes)
                        ),
                    )
                })?;
                classes.push(k as i64);
            }
        }
    }
    let target = match (target_index, schema.task) {
        (None, _) => Target::None,
        (Some(_), Task::Classification) => Target::Classes(classes),
        (Some(_), Task::Regression) => Target::Values(values),
    };
    Ok(Table {
        feature_names: names,
        features,
        rows: raw.rows.len(),
        target,
        lines: Some(raw.rows.iter().map(|(line, _)| *line).collect()),
    })
}

/// The values of one column of a CSV, in the file's row order (a time series). A missing or
/// non-numeric cell is an error naming its line and the column.
pub fn read_series(path: impl AsRef<Path>, column: &str) -> Result<Vec<f64>> {
    let path = path.as_ref();
    let raw = read_raw(path)?;
    let index = column_index(path, &raw.header, column, "series")?;
    let col = Some((column, index));
    raw.rows
        .iter()
        .map(|(line, row)| {
            let v = row[index].as_str();
            if is_missing(v) {
                return Err(at(
                    path,
                    *line,
                    col,
                    "missing value (a forecast needs every step of the series)".into(),
                ));
            }
            parse_number(path, *line, col, v)
        })
        .collect()
}

/// Whether `v` reads as a number written with a decimal comma (`-1,5`).
fn is_decimal_comma(v: &str) -> bool {
    v.split_once(',').is_some_and(|(whole, fraction)| {
        let whole = whole.strip_prefix('-').unwrap_or(whole);
        !whole.is_empty()
            && !fraction.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
    })
}

fn parse_number(path: &Path, line: u64, col: Option<(&str, usize)>, v: &str) -> Result<f64> {
    match v.parse::<f64>() {
        // Training runs in f32: a value beyond its range would turn into infinity there (and
        // its square overflows the scaling statistics), so it is refused here, where its line
        // and column are known.
        Ok(x) if x.is_finite() && x.abs() <= f64::from(f32::MAX) => Ok(x),
        Ok(x) if x.is_finite() => Err(at(
            path,
            line,
            col,
            format!(
                "{v:?} is beyond the range of f32 (nabla's training precision, largest \
                 magnitude {:e}): rescale the column",
                f32::MAX
            ),
        )),
        Ok(_) => Err(at(path, line, col, format!("{v:?} is not a finite number"))),
        Err(_) if is_decimal_comma(v) => Err(at(
            path,
            line,
            col,
            format!(
                "cannot parse {v:?} as a number: nabla reads decimal points ({}), not decimal \
                 commas (export the file with a point as the decimal separator)",
                v.replace(',', ".")
            ),
        )),
        Err(_) => Err(at(
            path,
            line,
            col,
            format!(
                "cannot parse {v:?} as a number (declare the column categorical to one-hot \
                 encode it)"
            ),
        )),
    }
}
