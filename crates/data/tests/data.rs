//! nabla-data on the real datasets in `shared/data/` and on small files written here: parsing,
//! error messages with file/line/column, batching, splits and preprocessing.

use nabla_data::preprocess::{Scaler, symmetric_eigen};
use nabla_data::*;
use std::path::PathBuf;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel)
}

fn temp_csv(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nabla-data-{}-{name}.csv", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn reads_the_digits_and_iris_files() {
    let (table, schema) = read_csv(shared("digits/train.csv"), &CsvOptions::default()).unwrap();
    assert_eq!((table.rows, table.width()), (1437, 64));
    assert_eq!(schema.target, "digit");
    assert_eq!(schema.classes.len(), 10);
    let Target::Classes(labels) = &table.target else {
        panic!("classification target expected")
    };
    assert!(labels.iter().all(|&c| (0..10).contains(&c)));
    assert!(table.features.iter().all(|&p| (0.0..=16.0).contains(&p)));
    let test = read_csv_with(shared("digits/test.csv"), &schema, true).unwrap();
    assert_eq!(test.rows, 360);
    let data = Dataset::from_table(&test).unwrap();
    assert_eq!(data.x().dims(), [360, 64]);
    assert_eq!(data.y().dims(), [360]);

    let options = CsvOptions {
        features: Some(vec!["petal_length_cm".into(), "petal_width_cm".into()]),
        ..Default::default()
    };
    let (iris, _) = read_csv(shared("iris/train.csv"), &options).unwrap();
    assert_eq!(iris.feature_names, ["petal_length_cm", "petal_width_cm"]);
    assert_eq!(iris.rows, 120);
}

#[test]
fn regression_targets_and_categorical_features() {
    let train = temp_csv(
        "cat-train",
        "area,city,price\n1200,paris,70\n1500,lyon,120.5\n900, paris ,55\n",
    );
    let options = CsvOptions {
        categorical: vec!["city".into()],
        task: Some(Task::Regression),
        ..Default::default()
    };
    let (table, schema) = read_csv(&train, &options).unwrap();
    assert_eq!(table.feature_names, ["area", "city=lyon", "city=paris"]);
    assert_eq!(
        table.features,
        [1200.0, 0.0, 1.0, 1500.0, 1.0, 0.0, 900.0, 0.0, 1.0]
    );
    assert_eq!(table.target, Target::Values(vec![70.0, 120.5, 55.0]));
    let test = temp_csv("cat-test", "area,city,price\n1000,lyon,60\n1100,nice,80\n");
    let err = read_csv_with(&test, &schema, true).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:3: column \"city\" (2): category \"nice\" was not seen in the training data \
             (known: lyon, paris)",
            test.display()
        )
    );
    // A prediction file without the target column.
    let predict = temp_csv("cat-predict", "city,area\nparis,1000\n");
    let table = read_csv_with(&predict, &schema, false).unwrap();
    assert_eq!(table.features, [1000.0, 0.0, 1.0]);
    assert_eq!(table.target, Target::None);
    // String class labels are sorted into indices.
    let labels = temp_csv("labels", "x,animal\n1,dog\n2,cat\n3,dog\n");
    let (t, s) = read_csv(&labels, &CsvOptions::default()).unwrap();
    assert_eq!(s.classes, ["cat", "dog"]);
    assert_eq!(t.target, Target::Classes(vec![1, 0, 1]));
}

#[test]
fn rows_and_errors_name_their_own_line_through_blank_lines_crlf_and_quoted_line_breaks() {
    // Each data row's line, counted by hand: line 1 the header, a quoted cell spanning two
    // lines, blank lines (empty or a lone \r) skipped between rows.
    let rows = ["1,\"a\nb\",0", "", "2,c,1", "", "", "3,d,0", "4,\"e\",1"];
    for ending in ["\n", "\r\n"] {
        let text = format!("x,note,y{ending}{}{ending}", rows.join(ending));
        let options = CsvOptions {
            categorical: vec!["note".into()],
            ..Default::default()
        };
        let (table, _) = read_csv_from("lines.csv", text.as_bytes(), &options).unwrap();
        assert_eq!(table.lines, Some(vec![2, 5, 8, 9]), "{ending:?}");
        // An error after the blank lines names the line of the row at fault.
        let bad = text.replace("3,d,0", "x3,d,0");
        let e = read_csv_from("lines.csv", bad.as_bytes(), &options)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("lines.csv:8: column \"x\""),
            "{ending:?}: {e}"
        );
        let short = text.replace("3,d,0", "3,d");
        let e = read_csv_from("lines.csv", short.as_bytes(), &options)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("lines.csv:8: 2 fields"), "{ending:?}: {e}");
    }
}

#[test]
fn semicolon_and_tab_separated_files_are_read_by_their_header() {
    let options = CsvOptions::default();
    let (comma, schema) =
        read_csv_from("c.csv", "a,b,y\n1.5,2,0\n3,4,1\n".as_bytes(), &options).unwrap();
    for (name, text) in [
        ("semicolon.csv", "a;b;y\n1.5;2;0\n3;4;1\n"),
        ("tab.tsv", "a\tb\ty\n1.5\t2\t0\n3\t4\t1\n"),
        // Commas inside quotes are not delimiters: the header has none outside them.
        ("quoted.csv", "\"a,\";b;y\n1.5;2;0\n3;4;1\n"),
    ] {
        let (table, read) = read_csv_from(name, text.as_bytes(), &options).unwrap();
        assert_eq!(
            (&table.features, &table.target),
            (&comma.features, &comma.target),
            "{name}"
        );
        assert_eq!(read.features[1..], schema.features[1..], "{name}");
        let first = if name == "quoted.csv" { "a," } else { "a" };
        assert_eq!(read.features[0].name, first);
        // A later file with the schema sniffs its own delimiter too.
        let again = read_csv_with_from(name, text.as_bytes(), &read, true).unwrap();
        assert_eq!(again.features, comma.features, "{name}");
    }
    // One column stays one column; a header with commas keeps them as the delimiter.
    let series = read_series(
        temp_csv("one-column", "passengers\n112\n118\n"),
        "passengers",
    );
    assert_eq!(series.unwrap(), vec![112.0, 118.0]);
    let (table, _) = read_csv_from("c.csv", "a,b;c,y\n1,2,0\n".as_bytes(), &options).unwrap();
    assert_eq!(table.feature_names, ["a", "b;c"]);
    // A wide file's columns are listed by their ends.
    let header: Vec<String> = (0..64).map(|i| format!("p{i}")).collect();
    let text = format!("{},digit\n{}0\n", header.join(","), "1,".repeat(64));
    let absent = CsvOptions {
        target: Some("label".into()),
        ..Default::default()
    };
    let e = read_csv_from("wide.csv", text.as_bytes(), &absent)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with(
            "the columns are p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, … (53 more), p63, digit \
             (65 in all)"
        ),
        "{e}"
    );
    // Decimal commas are named as such.
    let e = read_csv_from("de.csv", "a;b;y\n1,5;2;0\n".as_bytes(), &options)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "de.csv:2: column \"a\" (1): cannot parse \"1,5\" as a number: nabla reads \
                    decimal points (1.5), not decimal commas"
        ),
        "{e}"
    );
}

#[test]
fn bad_csv_input_names_file_line_and_column() {
    let cases: Vec<(&str, &str, CsvOptions, String)> = vec![
        (
            "number",
            "a,b,y\n1,2,0\n3,x7,1\n",
            CsvOptions::default(),
            "3: column \"b\" (2): cannot parse \"x7\" as a number (declare the column \
             categorical to one-hot encode it)"
                .into(),
        ),
        (
            "missing",
            "a,b,y\n1,,0\n",
            CsvOptions::default(),
            "2: column \"b\" (2): missing value (choose an imputation to fill missing values)"
                .into(),
        ),
        (
            "fields",
            "a,b,y\n1,2,0\n1,2\n",
            CsvOptions::default(),
            "3: 2 fields, but the header has 3".into(),
        ),
        (
            "target",
            "age,bought\n1,0\n",
            CsvOptions {
                target: Some("bougth".into()),
                ..Default::default()
            },
            "1: no target column \"bougth\" (did you mean \"bought\"?); the columns are age, bought"
                .into(),
        ),
        (
            "float-class",
            "a,y\n1,0.5\n",
            CsvOptions::default(),
            "2: column \"y\" (2): class label \"0.5\" is not an integer; for a real-valued target \
             choose the regression task"
                .into(),
        ),
        (
            "duplicate",
            "a,a,y\n1,2,0\n",
            CsvOptions::default(),
            "1: column name \"a\" appears twice".into(),
        ),
        ("empty", "a,b,y\n", CsvOptions::default(), " no data rows after the header".into()),
        (
            "twice",
            "a,b,y\n1,2,0\n",
            CsvOptions {
                features: Some(vec!["a".into(), "a".into()]),
                ..Default::default()
            },
            " feature column \"a\" is listed twice".into(),
        ),
    ];
    for (name, text, options, want) in cases {
        let path = temp_csv(name, text);
        let err = read_csv(&path, &options).unwrap_err().to_string();
        let want = format!("{}:{want}", path.display());
        assert_eq!(err, want, "case {name}");
    }
    let err = read_csv("/no/such/file.csv", &CsvOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/no/such/file.csv: No such file"), "{err}");
}

#[test]
fn missing_values_can_be_kept_and_imputed_from_training_statistics() {
    let path = temp_csv("impute", "a,b,y\n1,10,0\nNA,20,1\n3,,0\n5,40,1\n");
    let options = CsvOptions {
        missing: Missing::Keep,
        ..Default::default()
    };
    let (t, _) = read_csv(&path, &options).unwrap();
    assert!(t.features[2].is_nan() && t.features[5].is_nan());
    let mean = Preprocessor::fit(&t.features, 2, Some(Imputation::Mean), Scaling::None).unwrap();
    assert_eq!(mean.fill, Some(vec![3.0, 70.0 / 3.0]));
    let median =
        Preprocessor::fit(&t.features, 2, Some(Imputation::Median), Scaling::None).unwrap();
    assert_eq!(median.fill, Some(vec![3.0, 20.0]));
    assert_eq!(median.transform(&[f64::NAN, 1.0]).unwrap(), [3.0, 1.0]);
    let err = Preprocessor::fit(&t.features, 2, None, Scaling::Standardize)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing value in training row 2 column 1"),
        "{err}"
    );
}

#[test]
fn reads_mnist_idx_gzip() {
    let labels = read_idx(shared("mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(labels.dims, [10000]);
    assert!(labels.data.iter().all(|&l| l < 10));
    let images = read_idx(shared("mnist/t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(images.dims, [10000, 28, 28]);
    let data = Dataset::from_idx(&images, &labels).unwrap();
    assert_eq!(data.x().dims(), [10000, 1, 28, 28]);
    let bad = nabla_data::idx::parse_idx(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2]).unwrap_err();
    assert_eq!(bad, "IDX dims [3] need 3 bytes of data, the file has 2");
    let float = nabla_data::idx::parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap_err();
    assert!(float.contains("0x0d is not supported"), "{float}");
}

/// IDX files are told from CSVs by their first bytes, gzip-compressed or not.
#[test]
fn idx_files_are_recognized_by_their_header() {
    use std::io::Write;
    assert!(nabla_data::is_idx(&shared(
        "mnist/t10k-images-idx3-ubyte.gz"
    )));
    let dir = std::env::temp_dir().join(format!("nabla-data-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain.idx");
    std::fs::write(&plain, [0, 0, 8, 1, 0, 0, 0, 1, 7]).unwrap();
    assert!(nabla_data::is_idx(&plain));
    let csv = dir.join("rows.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    assert!(!nabla_data::is_idx(&csv));
    // A gzip-compressed CSV is not IDX either, and neither is a missing or one-byte file.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"a,b\n1,2\n").unwrap();
    let zipped = dir.join("rows.csv.gz");
    std::fs::write(&zipped, gz.finish().unwrap()).unwrap();
    assert!(!nabla_data::is_idx(&zipped));
    assert!(!nabla_data::is_idx(&dir.join("missing")));
    let tiny = dir.join("tiny");
    std::fs::write(&tiny, [0]).unwrap();
    assert!(!nabla_data::is_idx(&tiny));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loader_covers_every_row_once_per_epoch_with_a_seeded_order() {
    let x = nabla_core::Tensor::arange(0.0, 10.0, 1.0, nabla_core::DType::F32)
        .unwrap()
        .reshape([10, 1])
        .unwrap();
    let y = nabla_core::Tensor::from_vec((0..10i64).collect::<Vec<_>>(), [10]).unwrap();
    let data = Dataset::new(x, y).unwrap();
    let loader = DataLoader::new(4, 7).unwrap();
    let epoch = |l: &DataLoader, e: u64| -> Vec<Vec<i64>> {
        l.epoch(&data, e)
            .map(|b| b.unwrap().1.to_vec::<i64>().unwrap())
            .collect()
    };
    let e0 = epoch(&loader, 0);
    assert_eq!(e0.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
    let mut all: Vec<i64> = e0.concat();
    all.sort();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert_eq!(e0, epoch(&loader, 0), "same seed and epoch, same batches");
    assert_ne!(e0, epoch(&loader, 1), "a new order each epoch");
    let drop = DataLoader {
        drop_last: true,
        ..loader
    };
    assert_eq!(epoch(&drop, 0).len(), 2);
    let ordered = DataLoader {
        shuffle: false,
        ..loader
    };
    assert_eq!(epoch(&ordered, 3)[0], [0, 1, 2, 3]);
    assert!(DataLoader::new(0, 1).is_err());
}

#[test]
fn stratified_split_keeps_class_proportions() {
    let labels: Vec<i64> = (0..200).map(|i| if i < 150 { 0 } else { 1 }).collect();
    let s = split(200, 0.2, 0.1, 3, Some(&labels)).unwrap();
    assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (140, 40, 20));
    let ones = |part: &[usize]| part.iter().filter(|&&i| labels[i] == 1).count();
    assert_eq!((ones(&s.train), ones(&s.valid), ones(&s.test)), (35, 10, 5));
    let mut all: Vec<usize> = [s.train.clone(), s.valid.clone(), s.test.clone()].concat();
    all.sort();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    assert_eq!(s, split(200, 0.2, 0.1, 3, Some(&labels)).unwrap());
    assert_ne!(
        s.train,
        split(200, 0.2, 0.1, 4, Some(&labels)).unwrap().train
    );
    assert!(split(10, 0.6, 0.5, 0, None).is_err());
}

#[test]
fn scalers_fit_on_training_data_only() {
    // Two features on very different scales, like the seeds' house areas and bedrooms.
    let train = [1200.0, 2.0, 1500.0, 3.0, 2100.0, 4.0, 1100.0, 3.0];
    let std = Preprocessor::fit(&train, 2, None, Scaling::Standardize).unwrap();
    let z = std.transform(&train).unwrap();
    for j in 0..2 {
        let col: Vec<f64> = z.iter().skip(j).step_by(2).copied().collect();
        let mean = col.iter().sum::<f64>() / 4.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
    }
    // New data is scaled with the training statistics, not its own.
    let test = std.transform(&[1475.0, 3.0]).unwrap();
    assert!(test[0].abs() < 1e-12, "1475 is the training mean: {test:?}");
    let mm = Preprocessor::fit(&train, 2, None, Scaling::MinMax).unwrap();
    assert_eq!(mm.transform(&[1100.0, 4.0]).unwrap(), [0.0, 1.0]);
    // Round trip through JSON (it is saved with the model).
    let json = serde_json::to_string(&std).unwrap();
    assert_eq!(serde_json::from_str::<Preprocessor>(&json).unwrap(), std);
    assert!(std.transform(&[1.0, 2.0, 3.0]).is_err());
}

#[test]
fn image_preprocessing_is_saved_by_its_shape_not_pixel_by_pixel() {
    // 224x224 RGB, divided by 255: the schema's pixel names and the scaler's shifts and
    // scales are the same for every pixel, and saved once.
    let width = 3 * 224 * 224;
    let schema = CsvSchema::pixels(width, "label", vec!["cat".into(), "dog".into()]);
    let pixels = vec![128.0; 2 * width];
    let pre = Preprocessor::fit(&pixels, width, None, Scaling::Divide(255.0)).unwrap();
    let json = serde_json::to_string(&(&schema, &pre)).unwrap();
    assert!(json.len() < 500, "{} bytes: {}", json.len(), &json[..300]);
    let (schema_back, pre_back): (CsvSchema, Preprocessor) = serde_json::from_str(&json).unwrap();
    assert_eq!((schema_back, pre_back), (schema.clone(), pre));
    // Runs saved before listed every column and value: they still load, to the same.
    let listed = serde_json::to_value(&schema).unwrap();
    let mut old = listed.clone();
    old["features"] = serde_json::json!(
        (0..width)
            .map(|i| serde_json::json!({ "name": format!("p{i}"), "categories": null }))
            .collect::<Vec<_>>()
    );
    assert_eq!(serde_json::from_value::<CsvSchema>(old).unwrap(), schema);
    // Columns of a CSV are listed; per-feature statistics that differ too.
    let (table, csv_schema) = read_csv(shared("iris/train.csv"), &CsvOptions::default()).unwrap();
    let text = serde_json::to_string(&csv_schema).unwrap();
    assert!(text.contains("sepal_length_cm"), "{text}");
    assert_eq!(
        serde_json::from_str::<CsvSchema>(&text).unwrap(),
        csv_schema
    );
    let std = Preprocessor::fit(&table.features, 4, None, Scaling::Standardize).unwrap();
    let text = serde_json::to_string(&std).unwrap();
    assert!(!text.contains("\"all\""), "{text}");
    assert_eq!(serde_json::from_str::<Preprocessor>(&text).unwrap(), std);
    // A damaged entry is an error that says what was expected, and where.
    let bad = json.replace("\"pixels\":150528", "\"pixels\":\"many\"");
    assert_ne!(bad, json);
    let e = serde_json::from_str::<(CsvSchema, Preprocessor)>(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("{\"pixels\": count}") && e.contains("column"),
        "{e}"
    );
}

#[test]
fn pca_whitening_decorrelates_to_unit_variance() {
    let (table, _) = read_csv(shared("iris/train.csv"), &CsvOptions::default()).unwrap();
    let pre = Preprocessor::fit(
        &table.features,
        4,
        None,
        Scaling::PcaWhiten {
            components: Some(3),
            eps: 0.0,
        },
    )
    .unwrap();
    assert_eq!(pre.output_width(), 3);
    let z = pre.transform(&table.features).unwrap();
    let n = table.rows as f64;
    for a in 0..3 {
        for b in 0..3 {
            let cov: f64 = z.chunks(3).map(|r| r[a] * r[b]).sum::<f64>() / (n - 1.0);
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((cov - want).abs() < 1e-9, "cov[{a}][{b}] = {cov}");
        }
    }
    let Scaler::Pca { .. } = pre.scaler else {
        panic!("PCA scaler expected")
    };
}

#[test]
fn jacobi_eigendecomposition_satisfies_a_v_equals_lambda_v() {
    let n = 6;
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = 1.0 / (1.0 + i as f64 + j as f64) + if i == j { i as f64 } else { 0.0 };
        }
    }
    let (values, vectors) = symmetric_eigen(a.clone(), n);
    for e in 0..n {
        for i in 0..n {
            let av: f64 = (0..n).map(|j| a[i * n + j] * vectors[j * n + e]).sum();
            assert!((av - values[e] * vectors[i * n + e]).abs() < 1e-12);
        }
    }
}

#[test]
fn k_folds_partition_the_rows_and_keep_class_shares() {
    let rows: Vec<usize> = (0..103).collect();
    let labels: Vec<i64> = (0..103).map(|i| if i % 4 == 0 { 1 } else { 0 }).collect();
    let mut seen = vec![0; 103];
    for fold in 0..5 {
        let (train, valid) = nabla_data::k_fold(&rows, 5, fold, 7, Some(&labels)).unwrap();
        assert_eq!(train.len() + valid.len(), 103);
        assert!((20..=21).contains(&valid.len()), "{}", valid.len());
        for &r in &valid {
            seen[r] += 1;
            assert!(!train.contains(&r));
        }
        // 26 of 103 rows are class 1: 5 or 6 of every fold's ~21.
        let ones = valid.iter().filter(|&&r| labels[r] == 1).count();
        assert!((5..=6).contains(&ones), "fold {fold}: {ones}");
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "each row validates exactly once"
    );
    assert_eq!(
        nabla_data::k_fold(&rows, 5, 2, 7, Some(&labels)).unwrap(),
        nabla_data::k_fold(&rows, 5, 2, 7, Some(&labels)).unwrap()
    );
    assert!(nabla_data::k_fold(&rows, 1, 0, 7, None).is_err());
    assert!(nabla_data::k_fold(&rows, 5, 5, 7, None).is_err());
}

fn long_table(rows: &[[f64; 4]], target: Vec<i64>) -> nabla_data::Table {
    nabla_data::Table {
        feature_names: ["id", "t", "a", "b"].map(String::from).to_vec(),
        features: rows.iter().flatten().copied().collect(),
        rows: rows.len(),
        target: Target::Classes(target),
        lines: None,
    }
}

#[test]
fn long_rows_group_into_padded_sequences_in_step_order() {
    use nabla_data::SequenceSpec;
    // Sequence 5 arrives out of order and interleaved with sequence 2.
    let table = long_table(
        &[
            [5.0, 1.0, 10.0, 11.0],
            [2.0, 0.0, 20.0, 21.0],
            [5.0, 0.0, 12.0, 13.0],
            [5.0, 2.0, 14.0, 15.0],
        ],
        vec![1, 0, 1, 1],
    );
    let spec = SequenceSpec {
        id: "id".into(),
        step: Some("t".into()),
        pad: 0.0,
        max_steps: None,
    };
    let (wide, shape) = spec.group(&table, "f.csv", None).unwrap();
    assert_eq!((shape.steps, shape.channels, wide.rows), (3, 2, 2));
    assert_eq!(
        wide.features,
        vec![
            12.0, 13.0, 10.0, 11.0, 14.0, 15.0, 20.0, 21.0, 0.0, 0.0, 0.0, 0.0
        ]
    );
    assert_eq!(wide.target, Target::Classes(vec![1, 0]));
    assert_eq!(wide.feature_names[..3], ["a@t0", "b@t0", "a@t1"]);
    // A trained model's length: shorter sequences pad further, longer ones are an error.
    assert_eq!(spec.group(&table, "f.csv", Some(4)).unwrap().1.steps, 4);
    let e = spec
        .group(&table, "f.csv", Some(2))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("f.csv: sequence 5 (from line 2) has 3 steps, more than the 2"),
        "{e}"
    );

    // Bad input, each named by its line.
    let mut dup = table.clone();
    dup.features[4 * 2 + 1] = 1.0; // row 3 (line 4) gets step 1 again
    let e = spec.group(&dup, "f.csv", None).unwrap_err().to_string();
    assert!(
        e.contains("sequence 5 has step 1 twice") && e.contains("line"),
        "{e}"
    );
    let mut mixed = table.clone();
    mixed.target = Target::Classes(vec![1, 0, 0, 1]);
    let e = spec.group(&mixed, "f.csv", None).unwrap_err().to_string();
    assert!(
        e.contains("line 4: the target changes within sequence 5"),
        "{e}"
    );
    let mut zeros = table.clone();
    zeros.features[3 * 4 + 2..3 * 4 + 4].copy_from_slice(&[0.0, 0.0]);
    let e = spec.group(&zeros, "f.csv", None).unwrap_err().to_string();
    assert!(
        e.contains("line 5: every channel of this step equals the padding value"),
        "{e}"
    );
}

#[test]
fn sequence_scaling_is_per_channel_over_real_steps_and_keeps_padding() {
    use nabla_data::{Preprocessor, Scaling, SequenceShape};
    let shape = SequenceShape {
        steps: 3,
        channels: 2,
        pad: 0.0,
    };
    // Two sequences: [1,10],[3,30],pad and [5,50],pad,pad. Channel means 3 and 30 over the
    // three real steps (the padding would drag them towards 0).
    let x = [
        1.0, 10.0, 3.0, 30.0, 0.0, 0.0, 5.0, 50.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let pre = Preprocessor::fit_sequences(&x, shape, None, Scaling::Standardize).unwrap();
    let y = pre.transform(&x).unwrap();
    let s = (8.0f64 / 3.0).sqrt(); // population std of 1, 3, 5
    let want = [
        -2.0 / s,
        -2.0 / s,
        0.0,
        0.0,
        0.0,
        0.0,
        2.0 / s,
        2.0 / s,
        0.0,
        0.0,
        0.0,
        0.0,
    ];
    // The real step at the mean [3, 30] scales to exactly the padding value, so it is nudged
    // by one f32 ulp to stay a step.
    assert!(y[2] > 0.0 && y[2] < 1e-30 && y[3] == 0.0, "{y:?}");
    for (i, (a, b)) in y.iter().zip(want).enumerate() {
        if i != 2 {
            assert!((a - b).abs() < 1e-12, "{i}: {a} vs {b}");
        }
    }
    assert_eq!(pre.output_width(), 6);
    let e = Preprocessor::fit_sequences(
        &x,
        shape,
        None,
        Scaling::PcaWhiten {
            components: None,
            eps: 1e-5,
        },
    );
    assert!(e.unwrap_err().to_string().contains("pca_whiten"));
}

#[test]
fn a_series_becomes_windows_split_in_time_order() {
    let path = temp_csv(
        "series.csv",
        "year,value\n2000,1\n2001,2\n2002,4\n2003,8\n2004,16\n2005,32\n",
    );
    let values = read_series(&path, "value").unwrap();
    assert_eq!(values, vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
    let spec = SeriesSpec {
        column: "value".into(),
        window: 2,
        test_last: 1,
        difference: 0,
    };
    let t = spec.windows(&values, "series.csv").unwrap();
    // Oldest lag first: row i is (v[i], v[i+1]) -> v[i+2].
    assert_eq!(t.feature_names, vec!["lag_2", "lag_1"]);
    assert_eq!(t.rows, 4);
    assert_eq!(t.features, vec![1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0, 16.0]);
    assert_eq!(t.target, Target::Values(vec![4.0, 8.0, 16.0, 32.0]));
    // Test last, validation just before it, training first: nothing shuffled.
    let s = spec.split(t.rows, 0.34).unwrap();
    assert_eq!((s.train, s.valid, s.test), (vec![0, 1], vec![2], vec![3]));

    // Errors name what is wrong.
    let err = |r: Result<Table>| r.unwrap_err().to_string();
    assert!(err(spec.windows(&values[..2], "s.csv")).contains("too few"));
    let zero = SeriesSpec {
        window: 0,
        ..spec.clone()
    };
    assert!(err(zero.windows(&values, "s.csv")).contains("window"));
    let all_test = SeriesSpec {
        test_last: 4,
        ..spec.clone()
    };
    assert!(
        all_test
            .split(4, 0.0)
            .unwrap_err()
            .to_string()
            .contains("no training windows")
    );
    let gap = temp_csv("gap.csv", "year,value\n2000,1\n2001,\n2002,4\n");
    let e = read_series(&gap, "value").unwrap_err().to_string();
    assert!(
        e.contains("gap.csv") && e.contains(":3") && e.contains("missing"),
        "{e}"
    );
    let e = read_series(&path, "valu").unwrap_err().to_string();
    assert!(e.contains("value"), "did you mean: {e}");
}

#[test]
fn a_differenced_series_forecasts_changes_and_adds_the_levels_back() {
    // Squares: the changes over 2 steps, y[t] - y[t-2], are 4t - 4 for t >= 2.
    let values: Vec<f64> = (0..8).map(|t| (t * t) as f64).collect();
    let spec = SeriesSpec {
        column: "y".into(),
        window: 3,
        test_last: 1,
        difference: 2,
    };
    let t = spec.windows(&values, "squares.csv").unwrap();
    let changes: Vec<f64> = (2..8).map(|t| (4 * t - 4) as f64).collect();
    // 8 steps, 2 to start the differences, 3 in the first window: 3 forecasts.
    assert_eq!(t.rows, 3);
    assert_eq!(t.features[..3], changes[..3]);
    assert_eq!(t.features[6..], changes[2..5]);
    assert_eq!(t.target, Target::Values(changes[3..].to_vec()));
    // Row i forecasts y[i + 5]; its level two steps before is y[i + 3].
    let exact = spec.levels(&values, &changes[3..]);
    assert_eq!(exact, vec![25.0, 36.0, 49.0]);
    // A forecast's error in changes is its error in levels.
    let off = spec.levels(&values, &[changes[3] + 1.5, changes[4], changes[5] - 2.0]);
    let errors: Vec<f64> = off.iter().zip(&exact).map(|(p, y)| p - y).collect();
    assert_eq!(errors, vec![1.5, 0.0, -2.0]);
    // Without a difference the forecasts are levels already.
    let plain = SeriesSpec {
        difference: 0,
        ..spec.clone()
    };
    assert_eq!(plain.levels(&values, &[1.0, 2.0]), vec![1.0, 2.0]);
    // Too short once differenced: the error says why.
    let e = spec
        .windows(&values[..5], "squares.csv")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("squares.csv") && e.contains("difference of 2"),
        "{e}"
    );
}

#[test]
fn a_text_becomes_next_character_windows() {
    let path = temp_csv("text", "ab ba\ncab\n");
    let text = read_text(&path).unwrap();
    let vocabulary = Vocabulary::of(&text);
    // Sorted by code point: '\n' < ' ' < 'a' < 'b' < 'c'.
    assert_eq!(vocabulary.names(), vec!["\\n", "space", "a", "b", "c"]);
    let ids = vocabulary.encode(&text, &path).unwrap();
    assert_eq!(ids, vec![2, 3, 1, 3, 2, 0, 4, 2, 3, 0]);
    assert_eq!(vocabulary.decode(&ids), text);
    // 10 ids: (10 - 1) / 4 = 2 windows of 4; each target is the next id; the last id is left.
    let spec = TextSpec {
        context: 4,
        carry_state: false,
    };
    let data = spec.dataset(&ids, "text").unwrap();
    assert_eq!(data.x().dims(), [2, 4]);
    assert_eq!(
        data.x().to_vec_f64(),
        vec![2.0, 3.0, 1.0, 3.0, 2.0, 0.0, 4.0, 2.0]
    );
    assert_eq!(
        data.y().to_vec::<i64>().unwrap(),
        vec![3, 1, 3, 2, 0, 4, 2, 3]
    );
    // Splits are contiguous stretches: training, then validation, then test.
    let [train, valid, test] = spec.split(100, 0.1, 0.2).unwrap();
    assert_eq!((train, valid, test), (0..70, 70..80, 80..100));

    // Errors say where and why.
    let short = spec.dataset(&ids[..4], "the validation part").unwrap_err();
    assert!(
        short
            .to_string()
            .contains("the validation part has 4 characters"),
        "{short}"
    );
    let unseen = temp_csv("unseen", "ab\nbaz\n");
    let e = vocabulary
        .encode(&read_text(&unseen).unwrap(), &unseen)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(":2:") && e.contains("column 3") && e.contains("z (U+007A)"),
        "{e}"
    );
    let latin1 = temp_csv("latin1", "");
    std::fs::write(&latin1, b"ok\ncaf\xe9\n").unwrap();
    let e = read_text(&latin1).unwrap_err().to_string();
    assert!(
        e.contains(":2:") && e.contains("column 4") && e.contains("0xe9"),
        "{e}"
    );
    assert!(spec.split(10, 0.6, 0.4).is_err());
    assert!(
        TextSpec {
            context: 0,
            carry_state: false
        }
        .dataset(&ids, "t")
        .is_err()
    );
}

/// Streams for carried state: row `j * streams + s` is window `j` of stretch `s`, so that
/// batch `j + 1` (rows of window `j + 1`) continues every row of batch `j`.
#[test]
fn stream_layout_continues_each_row_in_the_next_batch() {
    let ids: Vec<usize> = (0..23).collect();
    let spec = TextSpec {
        context: 3,
        carry_state: true,
    };
    // 22 predictions over 2 streams: stretches of 11, each 3 windows of 3 (2 left over).
    let data = spec.stream_dataset(&ids, 2, "text").unwrap();
    assert_eq!(data.x().dims(), [6, 3]);
    let x = data.x().to_vec_f64();
    let row = |r: usize| x[r * 3..r * 3 + 3].to_vec();
    assert_eq!(row(0), [0.0, 1.0, 2.0]); // stream 0, window 0
    assert_eq!(row(1), [11.0, 12.0, 13.0]); // stream 1, window 0
    assert_eq!(row(2), [3.0, 4.0, 5.0]); // stream 0, window 1: where row 0 ended
    assert_eq!(row(5), [17.0, 18.0, 19.0]); // stream 1, window 2
    let y = data.y().to_vec::<i64>().unwrap();
    assert_eq!(&y[15..18], [18, 19, 20]);
    // Too short for the streams: the error gives the characters needed.
    let e = spec
        .stream_dataset(&ids[..7], 4, "the validation part")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the validation part has 7 characters")
            && e.to_string().contains("(13 characters)"),
        "{e}"
    );
}

#[test]
fn the_kjv_texts_share_their_63_characters() {
    let train = read_text(shared("kjv/kjv_train.txt")).unwrap();
    let vocabulary = Vocabulary::of(&train);
    assert_eq!(vocabulary.len(), 63);
    let test_path = shared("kjv/kjv_test.txt");
    let test = vocabulary
        .encode(&read_text(&test_path).unwrap(), &test_path)
        .unwrap();
    assert_eq!(test.len(), 949_481);
    let data = TextSpec {
        context: 100,
        carry_state: false,
    }
    .dataset(&test, "test")
    .unwrap();
    assert_eq!(data.x().dims(), [9494, 100]);
}

#[test]
fn the_f32_transform_is_the_f64_transform_rounded() {
    use nabla_data::{Imputation, Preprocessor, Scaling, SequenceShape};
    let train = [1200.0, 2.0, f64::NAN, 3.0, 2100.0, 4.0, 1100.0, f64::NAN];
    let shape = SequenceShape {
        steps: 2,
        channels: 2,
        pad: 0.0,
    };
    let fitted = [
        Preprocessor::fit(&train, 2, Some(Imputation::Median), Scaling::Standardize).unwrap(),
        Preprocessor::fit(&train, 2, Some(Imputation::Mean), Scaling::MinMax).unwrap(),
        Preprocessor::fit(
            &train,
            2,
            Some(Imputation::Constant(0.5)),
            Scaling::PcaWhiten {
                components: Some(1),
                eps: 0.0,
            },
        )
        .unwrap(),
        // A sequence with a padding step, which passes unchanged.
        Preprocessor::fit_sequences(
            &[1.0, 9.0, 0.0, 0.0, 3.0, 5.0, 2.0, 7.0],
            shape,
            None,
            Scaling::Standardize,
        )
        .unwrap(),
    ];
    for pre in &fitted {
        let input: &[f64] = if pre.sequence.is_some() {
            &[1.0, 9.0, 0.0, 0.0]
        } else {
            &train
        };
        let want: Vec<f32> = pre
            .transform(input)
            .unwrap()
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_eq!(pre.transform_f32(input).unwrap(), want, "{pre:?}");
        assert_eq!(pre.transform_f32_owned(input.to_vec()).unwrap(), want);
        assert!(want.iter().all(|v| v.is_finite()), "{want:?}");
    }
    // Without an imputation both name the first missing value by row and column.
    let plain = Preprocessor::fit(&[1.0, 2.0, 3.0, 4.0], 2, None, Scaling::Standardize).unwrap();
    let holes = [1.0, 2.0, 3.0, f64::NAN, f64::NAN, 1.0];
    let e64 = plain.transform(&holes).unwrap_err().to_string();
    let e32 = plain.transform_f32(&holes).unwrap_err().to_string();
    assert!(e64.contains("row 2 column 2"), "{e64}");
    assert_eq!(e64, e32);
    let owned = plain.transform_f32_owned(holes.to_vec()).unwrap_err();
    assert_eq!(owned.to_string(), e64);
}

proptest::proptest! {
    /// Moving the chosen rows within the table's buffer gives what copying them gives, for any
    /// order of any subset, and for a repeated row (which falls back to the copy).
    #[test]
    fn moving_rows_in_place_equals_copying_them(
        rows in 1usize..40,
        width in 1usize..5,
        keys in proptest::collection::vec(0u32..1000, 40),
        keep in 0usize..40,
        repeat in proptest::bool::ANY,
    ) {
        let table = Table {
            feature_names: (0..width).map(|j| format!("f{j}")).collect(),
            features: (0..rows * width).map(|v| v as f64).collect(),
            rows,
            target: Target::Classes((0..rows as i64).collect()),
            lines: Some((0..rows as u64).map(|r| 3 * r + 2).collect()),
        };
        // A random order of a random subset: the rows sorted by random keys, cut at `keep`.
        let mut chosen: Vec<usize> = (0..rows).collect();
        chosen.sort_by_key(|&r| (keys[r], r));
        chosen.truncate(keep.min(rows));
        if repeat && !chosen.is_empty() {
            chosen.push(chosen[0]);
        }
        let copied = table.select(&chosen);
        proptest::prop_assert_eq!(copied.rows, chosen.len());
        for (i, &r) in chosen.iter().enumerate() {
            proptest::prop_assert_eq!(copied.features[i * width], (r * width) as f64);
            proptest::prop_assert_eq!(copied.line(i), 3 * r as u64 + 2);
        }
        proptest::prop_assert_eq!(table.into_rows(&chosen), copied);
    }
}

#[test]
fn labels_kept_beside_other_targets_follow_the_rows() {
    let x = nabla_core::Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], [4, 1]).unwrap();
    // An autoencoder's targets are its inputs; its classes are kept beside them.
    let data = Dataset::new(x.clone(), x.clone()).unwrap();
    assert_eq!(data.labels(), None);
    let labelled = data.clone().with_labels(vec![7, 8, 9, 7]).unwrap();
    assert_eq!(labelled.labels(), Some(vec![7, 8, 9, 7]));
    let picked = labelled.select(&[3, 1]).unwrap();
    assert_eq!(picked.labels(), Some(vec![7, 8]));
    assert_eq!(picked.x().to_vec_f64(), [3.0, 1.0]);
    let e = data.with_labels(vec![1, 2]).unwrap_err().to_string();
    assert!(e.contains("2 labels for 4 rows"), "{e}");
    // Class targets are the labels when none were kept.
    let classes = nabla_core::Tensor::from_vec(vec![2i64, 0, 1, 2], [4]).unwrap();
    let classified = Dataset::new(x, classes).unwrap();
    assert_eq!(classified.labels(), Some(vec![2, 0, 1, 2]));
}
