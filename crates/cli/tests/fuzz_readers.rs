//! Byte-soup fuzzing of every reader of user files: CSV, IDX (plain and gzip), images (PNG,
//! JPEG, BMP, GIF, WebP), safetensors and the TOML config (parsed, then built into a model, loss, optimizer and schedule). cargo-fuzz
//! needs a nightly toolchain, which this machine cannot fetch, so proptest drives it: each
//! input is either random bytes or a valid file mangled by a few edits (bytes flipped, inserted,
//! deleted, duplicated, the file truncated, or tokens that matter to the format spliced in).
//!
//! A reader must return `Ok` or `Err` — a panic fails the test — and what it accepts must be
//! consistent (sizes that match, finite numbers, a config that reads back the same). Each test
//! prints how many inputs it tried and how many were accepted; both kinds must occur, or the
//! mutations are not reaching the reader's logic. `NABLA_FUZZ_CASES` sets the count per reader
//! (default 2000); the figures in the README come from a long run.

use nabla_core::{DType, Rng};
use nabla_data::{CsvOptions, Missing, Target, Task};
use nabla_nn::ModuleExt;
use nabla_nn::layers::{Linear, Relu, Sequential};
use nabla_train::config::{self, OutputSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::Cell;
use std::path::Path;

fn cases() -> u32 {
    std::env::var("NABLA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// One change to a file.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
    Splice(usize, &'static [u8]),
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let at = |i: usize, b: &Vec<u8>| i % (b.len() + 1);
        match e {
            Edit::Set(i, v) if !b.is_empty() => {
                let i = i % b.len();
                b[i] = *v;
            }
            Edit::Set(..) => {}
            Edit::Insert(i, bytes) => {
                let i = at(*i, &b);
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Duplicate(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                let part = b[i..end].to_vec();
                b.splice(end..end, part);
            }
            Edit::Truncate(i) => {
                let i = at(*i, &b);
                b.truncate(i);
            }
            Edit::Splice(i, token) => {
                let i = at(*i, &b);
                b.splice(i..i, token.iter().copied());
            }
        }
    }
    b
}

/// Random bytes, or one of `seeds` with 1 to 8 edits (tokens from `tokens`).
fn inputs(seeds: Vec<Vec<u8>>, tokens: &'static [&'static [u8]]) -> BoxedStrategy<Vec<u8>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Edit::Set(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1..24usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 1..48usize).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), prop::sample::select(tokens)).prop_map(|(i, t)| Edit::Splice(i, t)),
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        6 => (prop::sample::select(seeds), prop::collection::vec(edit, 1..8))
            .prop_map(|(s, e)| apply(&s, &e)),
    ]
    .boxed()
}

/// Runs `check` on `cases()` inputs; `check` says whether the reader accepted the input.
fn fuzz<T: std::fmt::Debug>(
    name: &str,
    strategy: impl Strategy<Value = T>,
    check: impl Fn(T) -> bool,
) {
    let total = cases();
    let accepted = Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: total,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |input| {
            if check(input) {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let ok = accepted.get();
    eprintln!(
        "{name}: {total} inputs without a crash ({ok} accepted, {} rejected)",
        total - ok
    );
    assert!(ok > 0 && ok < total, "{name}: the inputs should be mixed");
}

const CSV_TOKENS: &[&[u8]] = &[
    b",",
    b"\n",
    b"\r\n",
    b"\r",
    b"\"",
    b"\"\"",
    b"NaN",
    b"1e300",
    b"-inf",
    b"1e-320",
    b"\xef\xbb\xbf",
    b"\0",
    b"  ",
    b"y",
    b"a",
    b"?",
    b"-0",
    b"18446744073709551616",
    b"0.5",
    b"\xff\xfe",
    b"\xc3\xa9",
];

#[test]
fn csv_reader_never_panics() {
    let seeds = vec![
        b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n".to_vec(),
        b"age,color,y\n25,red,yes\n31,blue,no\n47,red,yes\n52,green,no\n".to_vec(),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/seeds/house_prices.csv"),
        )
        .unwrap()
        .into_bytes(),
    ];
    let options = [
        CsvOptions::default(),
        CsvOptions {
            target: Some("y".into()),
            categorical: vec!["color".into()],
            missing: Missing::Keep,
            ..CsvOptions::default()
        },
        CsvOptions {
            task: Some(Task::Regression),
            ..CsvOptions::default()
        },
    ];
    // A training file's schema, for reading later files with it.
    let (_, schema) =
        nabla_data::read_csv_from("seed.csv", &seeds[0][..], &CsvOptions::default()).unwrap();
    fuzz("csv", inputs(seeds, CSV_TOKENS), |bytes| {
        let bytes = &bytes[..];
        let mut any = false;
        for o in &options {
            if let Ok((table, schema)) = nabla_data::read_csv_from("f.csv", bytes, o) {
                any = true;
                assert_eq!(table.features.len(), table.rows * table.width());
                assert_eq!(table.width(), table.feature_names.len());
                if o.missing == Missing::Error {
                    assert!(table.features.iter().all(|x| x.is_finite()));
                }
                match &table.target {
                    Target::Classes(c) => {
                        assert_eq!(c.len(), table.rows);
                        assert!(
                            c.iter()
                                .all(|&k| (0..schema.classes.len() as i64).contains(&k))
                        );
                    }
                    Target::Values(v) => assert!(v.iter().all(|x| x.is_finite())),
                    Target::None => panic!("a training file has a target"),
                }
            }
        }
        for with_target in [true, false] {
            if let Ok(t) = nabla_data::read_csv_with_from("g.csv", bytes, &schema, with_target) {
                any = true;
                assert_eq!(t.features.len(), t.rows * t.width());
            }
        }
        any
    });
}

const IDX_TOKENS: &[&[u8]] = &[
    b"\0\0\x08\x01",
    b"\0\0\x08\x03",
    b"\xff\xff\xff\xff",
    b"\0\0\0\0",
    b"\x1f\x8b",
    b"\0\0\0\x02",
];

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn idx_reader_never_panics() {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2];
    images.extend(0..24u8);
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 5];
    labels.extend([3, 1, 4, 1, 5]);
    let seeds = vec![gzip(&images), gzip(&labels), images, labels];
    fuzz(
        "idx",
        inputs(seeds, IDX_TOKENS),
        |bytes| match nabla_data::decode_idx(&bytes) {
            Ok(a) => {
                assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
                true
            }
            Err(_) => false,
        },
    );
}

const IMAGE_TOKENS: &[&[u8]] = &[
    b"IHDR",
    b"IDAT",
    b"IEND",
    b"eXIf",
    b"PLTE",
    b"\xff\xd8",
    b"\xff\xc0",
    b"\xff\xc4",
    b"\xff\xda",
    b"\xff\xe1",
    b"Exif\0\0II*\0",
    b"BM",
    b"GIF89a",
    b"RIFF",
    b"WEBPVP8L",
    b"\xff\xff\xff\x7f",
    b"\0\0\0\0",
];

#[test]
fn image_reader_never_panics() {
    let dir = std::env::temp_dir().join(format!("nabla-fuzz-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let picture =
        image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
    let seeds = [
        image::ImageFormat::Png,
        image::ImageFormat::Jpeg,
        image::ImageFormat::Bmp,
        image::ImageFormat::Gif,
        image::ImageFormat::WebP,
    ]
    .iter()
    .map(|&format| {
        let mut bytes = std::io::Cursor::new(Vec::new());
        let rgb = image::DynamicImage::ImageRgb8(picture.clone());
        rgb.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    })
    .collect();
    // Read as a run resized to 3 x 5 RGB reads its images (whatever size a file claims).
    let shape = nabla_data::ImageShape {
        channels: 3,
        height: 3,
        width: 5,
        resize: true,
    };
    let schema = nabla_data::CsvSchema {
        features: Vec::new(),
        target: "class".into(),
        task: Task::Classification,
        classes: vec!["a".into()],
        missing: Missing::Error,
    };
    let file = dir.join("fuzzed.png");
    fuzz("image", inputs(seeds, IMAGE_TOKENS), |bytes| {
        std::fs::write(&file, &bytes).unwrap();
        match nabla_data::read_images_with(&file, &shape, &schema, false) {
            Ok(images) => {
                let values = &images.table.features;
                assert_eq!(values.len(), 45);
                assert!(values.iter().all(|v| (0.0..=255.0).contains(v)));
                true
            }
            Err(_) => false,
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

const SAFETENSORS_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"",
    b":",
    b",",
    b"[",
    b"]",
    b"F32",
    b"F64",
    b"I64",
    b"U8",
    b"BF16",
    b"\"shape\"",
    b"\"data_offsets\"",
    b"\"dtype\"",
    b"\"__metadata__\"",
    b"99999999999",
    b"-1",
    b"\xff\xff\xff\xff\xff\xff\xff\xff",
];

#[test]
fn safetensors_reader_never_panics() {
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(Linear::new(3, 2, &mut rng).unwrap())
        .with(Relu)
        .with(
            Linear::builder(2, 1)
                .dtype(DType::F64)
                .build(&mut rng)
                .unwrap(),
        );
    let weights = nabla_train::checkpoint::weights_bytes(&model.state_vars()).unwrap();
    let labels = nabla_train::checkpoint::serialize(
        &[(
            "y".to_string(),
            nabla_core::Tensor::from_vec(vec![1i64, 2, 3], [3]).unwrap(),
        )],
        None,
    )
    .unwrap();
    fuzz(
        "safetensors",
        inputs(vec![weights, labels], SAFETENSORS_TOKENS),
        |bytes| match nabla_train::checkpoint::decode_tensors(Path::new("m.safetensors"), &bytes) {
            Ok((tensors, _)) => {
                for t in tensors.values() {
                    assert_eq!(t.elem_count(), t.dims().iter().product::<usize>());
                    assert_eq!(t.to_vec_f64().len(), t.elem_count());
                }
                true
            }
            Err(_) => false,
        },
    );
}

const TOML_TOKENS: &[&[u8]] = &[
    b"=",
    b"[",
    b"]",
    b"[[model.layers]]\n",
    b"\"",
    b"'''",
    b"{",
    b"}",
    b"\n",
    b"#",
    b"type = \"relu\"\n",
    b"units = 0\n",
    b"units = 100000000000\n",
    b"1e999",
    b"nan",
    b"-1",
    b"inf",
    b"0",
    b"lr = -1\n",
    b"type = \"residual\"\nlayers = []\n",
    b"[tune.space]\n\"optimizer.lr\" = { values = [] }\n",
    b"epochs = 0\n",
    b"p = 1.5\n",
    b"[schedule]\ntype = \"step\"\nstep_size = 0\n",
    b"betas = [1.0, 2.0]\n",
];

#[test]
fn config_reader_never_panics() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let seeds: Vec<Vec<u8>> = ["iris", "xor", "digits", "diabetes", "house_prices"]
        .iter()
        .map(|n| std::fs::read(examples.join(format!("{n}.toml"))).unwrap())
        .collect();
    fuzz("config", inputs(seeds, TOML_TOKENS), |bytes| {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return false;
        };
        let Ok(located) = config::load_str(text, Some(Path::new("f.toml")), &[]) else {
            return false;
        };
        let c = &located.config;
        // What was read writes back and reads again the same.
        let written = toml::to_string(c).unwrap();
        let again = config::load_str(&written, None, &[]).unwrap().config;
        assert_eq!(toml::to_string(&again).unwrap(), written);
        // Building never panics either (a bad value is an error naming its key).
        for output in [OutputSpec::Classes(3), OutputSpec::Values(1)] {
            if let Ok(loss) = config::build_loss(c.loss.as_ref(), output) {
                let _ = config::build_model(&c.model, &[4], output, &loss, &mut Rng::seed(0));
            }
        }
        let _ = config::build_optimizer(&c.optimizer);
        let _ = config::build_schedule(&c.schedule, &c.train);
        true
    });
}

/// Keys a user may set, with values of every type: parsed, built on real data, and trained
/// for up to two epochs. Whatever the value, the outcome is a result, not a panic or an abort.
#[test]
fn config_overrides_never_panic() {
    use nabla_train::experiment::prepare;
    const KEYS: &[&str] = &[
        "seed",
        "data.valid_split",
        "data.test_split",
        "data.stratify",
        "data.scaling",
        "data.impute",
        "data.task",
        "data.features",
        "data.target",
        "model.layers[0].units",
        "model.layers[0].type",
        "model.layers[0].init",
        "model.layers[1].type",
        "model.layers[1]",
        "model.layers[2].units",
        "loss.type",
        "loss",
        "optimizer.type",
        "optimizer.lr",
        "optimizer.momentum",
        "optimizer.betas",
        "optimizer.weight_decay",
        "schedule.type",
        "schedule.k",
        "schedule.step_size",
        "train.epochs",
        "train.batch_size",
        "train.warmup_epochs",
        "train.clip_grad_norm",
        "train.clip_grad_value",
        "train.early_stopping",
    ];
    const WORDS: &[&str] = &[
        "relu",
        "linear",
        "dropout",
        "adam",
        "sgd",
        "step",
        "cosine",
        "standardize",
        "min_max",
        "pca_whiten",
        "regression",
        "mse",
        "cross_entropy",
        "he_normal",
        "x1",
        "y",
        "mean",
        "batch_norm",
        "layer_norm",
        "sigmoid",
        "",
    ];
    // Weighted towards values of the right kind, so that many runs get as far as training.
    let value = prop_oneof![
        1 => any::<i64>().prop_map(|v| v.to_string()),
        4 => (0i64..20).prop_map(|v| v.to_string()),
        1 => any::<f64>().prop_map(|v| format!("{v:?}")),
        4 => (-0.5f64..1.5).prop_map(|v| format!("{v:?}")),
        1 => Just("nan".to_string()),
        1 => Just("-inf".to_string()),
        1 => any::<bool>().prop_map(|v| v.to_string()),
        4 => prop::sample::select(WORDS).prop_map(|w| format!("{w:?}")),
        2 => prop::sample::select(WORDS).prop_map(|w| format!("{{ type = {w:?} }}")),
        1 => Just("[0.9, 0.999]".to_string()),
        1 => Just("[\"x1\", \"x1\"]".to_string()),
        1 => Just("{ patience = 0 }".to_string()),
        1 => Just("{ constant = 1e300 }".to_string()),
    ];
    let overrides = prop::collection::vec(
        (prop::sample::select(KEYS), value).prop_map(|(k, v)| format!("{k}={v}")),
        1..3,
    );
    let xor = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/xor.toml");
    let text = std::fs::read_to_string(&xor).unwrap();
    fuzz("config overrides", overrides, |sets| {
        let Ok(located) = config::load_text_at(&text, &xor, &sets) else {
            return false;
        };
        let Ok(mut exp) = prepare(&located) else {
            return false;
        };
        exp.train_config.epochs = exp.train_config.epochs.min(2);
        exp.fit().is_ok()
    });
}
