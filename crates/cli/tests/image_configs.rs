//! The shipped image configs trained through the binary: MNIST from IDX files (one epoch, eval
//! and predict on IDX files, and the IDX errors), the digits CNN to its 98% target, the digits
//! as a folder of PNG files, and the digits CNN with augmentation layers. They are the heaviest
//! runs of the suite, so they live in a test binary of their own: cargo runs test binaries one
//! after another, and the timing-based kill test in `cli_runs.rs` must not share the machine
//! with them.

mod common;

use common::{read_json, rejects, repo, run, scratch, stdout};
use std::process::Command;

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

#[test]
fn the_mnist_config_trains_on_idx_files() {
    let dir = scratch("mnist");
    let config = repo().join("examples/mnist.toml");
    let out = run(nabla()
        .args(["train", "-q", "--json", "--set", "train.epochs=1", "--out"])
        .arg(dir.join("run"))
        .arg(&config));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // One epoch of the 784-128-10 MLP on 54,000 images: well past the 0.93 that
    // logistic regression reaches.
    let acc = summary["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.94, "{acc}");
    // The 10,000 test images were evaluated, with the pixel schema saved for later files.
    let pre = read_json(dir.join("run/preprocessing.json"));
    assert_eq!(pre["schema"]["features"]["pixels"], 784);
    assert_eq!(pre["schema"]["classes"].as_array().unwrap().len(), 10);
    let text = std::fs::read_to_string(dir.join("run/report.html")).unwrap();
    assert!(text.contains("test"), "the report names its split");

    // The saved run reads IDX files too: eval with the label file reproduces the test
    // accuracy; predict writes one row per image; eval without the labels says what is missing.
    let mnist = repo().join("../shared/data/mnist");
    let (images, labels) = (
        mnist.join("t10k-images-idx3-ubyte.gz"),
        mnist.join("t10k-labels-idx1-ubyte.gz"),
    );
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("run"))
        .arg(&images)
        .arg("--labels")
        .arg(&labels));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(metrics["accuracy"].as_f64().unwrap(), acc);
    let predictions = stdout(&run(nabla()
        .arg("predict")
        .arg(dir.join("run"))
        .arg(&images)));
    let rows: Vec<&str> = predictions.lines().collect();
    assert_eq!(rows.len(), 10_000 + 1, "a header and one row per image");
    assert!(rows[0].starts_with("predicted,p_0,"), "{}", rows[0]);
    // The report shows the test images got wrong most confidently, each named by its index in
    // the IDX file and drawn from its own 28x28 pixels.
    let truth = nabla_data::read_idx(&labels).unwrap().data;
    let pixels = nabla_data::read_idx(&images).unwrap().data;
    let mut wrong: Vec<(f64, usize, usize)> = rows[1..]
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let cells: Vec<&str> = row.split(',').collect();
            let class: usize = cells[0].parse().unwrap();
            let p: f64 = cells[1 + class].parse().unwrap();
            (class != usize::from(truth[i])).then_some((p, i, class))
        })
        .collect();
    wrong.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    assert!(text.contains(&format!("(12 of the {} wrong of 10000;", wrong.len())));
    let captions = figcaptions(&text);
    assert_eq!(captions.len(), 12);
    for (caption, &(p, i, predicted)) in captions.iter().zip(&wrong) {
        let name = format!("t10k-images-idx3-ubyte.gz #{i}</code>");
        assert!(
            caption.starts_with(&format!("{} → {predicted} ({p:.3})<br><code>", truth[i]))
                && caption.ends_with(&name),
            "{caption} for image {i}"
        );
        let png = nabla_train::image_grid::png(28, 28, 1, &pixels[i * 784..(i + 1) * 784]);
        let data = nabla_train::image_grid::base64(&png);
        assert!(text.contains(&data), "image {i}: its pixels, as read");
    }
    let err = rejects(nabla().arg("eval").arg(dir.join("run")).arg(&images));
    assert!(
        err.contains("t10k-images-idx3-ubyte.gz: is an IDX image file") && err.contains("--labels"),
        "{err}"
    );

    // Labels that do not belong to the images: named, exit 2, no run folder.
    let err = rejects(
        nabla()
            .arg("train")
            .arg(&config)
            .arg("--set")
            .arg(format!(
                "data.train_labels={:?}",
                mnist.join("t10k-labels-idx1-ubyte.gz")
            ))
            .arg("--out")
            .arg(dir.join("bad")),
    );
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz: 10000 labels for the 60000 examples"),
        "{err}"
    );
    // A CSV-only option on IDX data, and test images without labels.
    let err = rejects(
        nabla()
            .arg("train")
            .arg(&config)
            .args(["--set", "data.target=\"digit\"", "--out"])
            .arg(dir.join("bad")),
    );
    assert!(err.contains("data.target: applies to CSV files"), "{err}");
    let text = std::fs::read_to_string(&config).unwrap();
    let no_labels: String = text
        .lines()
        .filter(|l| !l.starts_with("test_labels"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "../../shared",
            &repo().join("../shared").display().to_string(),
        );
    std::fs::write(dir.join("m.toml"), no_labels).unwrap();
    let err = rejects(
        nabla()
            .arg("train")
            .arg(dir.join("m.toml"))
            .arg("--out")
            .arg(dir.join("bad")),
    );
    assert!(
        err.contains("m.toml:12:1: data.test: IDX test images need their labels"),
        "{err}"
    );
    assert!(!dir.join("bad").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cnn_config_reaches_98_percent_on_the_digits() {
    let dir = scratch("cnn");
    let out = run(nabla()
        .args(["train", "-q", "--json"])
        .arg(repo().join("examples/digits_cnn.toml"))
        .arg("--out")
        .arg(dir.join("run")));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let acc = summary["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.98, "{acc}");
    // The checkpoint holds PyTorch's conv layout: [out, in, kh, kw].
    let bytes = std::fs::read(dir.join("run/model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(
        header["1.weight"]["shape"],
        serde_json::json!([32, 1, 3, 3])
    );
    assert_eq!(
        header["4.weight"]["shape"],
        serde_json::json!([64, 32, 3, 3])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The digits CNN config with `extra` layers after its reshape, its data paths absolute.
fn digits_cnn_with(extra: &str) -> String {
    let text = std::fs::read_to_string(repo().join("examples/digits_cnn.toml")).unwrap();
    let data = repo().join("data/digits");
    text.replace("../data/digits", data.to_str().unwrap())
        .replace(
            "shape = [1, 8, 8]\n",
            &format!("shape = [1, 8, 8]\n{extra}"),
        )
}

#[test]
fn augmentation_layers_vary_training_and_leave_evaluation_alone() {
    let dir = scratch("augment");
    let config = dir.join("augmented.toml");
    let shift = "\n[[model.layers]]\ntype = \"random_translation\"\npixels = 1\n";
    std::fs::write(&config, digits_cnn_with(shift)).unwrap();
    let train = |out: &str| {
        let out = run(nabla()
            .args(["train", "-q", "--json", "--set", "train.epochs=12"])
            .arg(&config)
            .arg("--out")
            .arg(dir.join(out)));
        let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        summary["test"]["accuracy"].as_f64().unwrap()
    };
    let acc = train("a");
    assert!(acc >= 0.95, "{acc}");
    // The shifts are drawn from the run's seed: the same seed gives the same model.
    assert_eq!(train("b"), acc);
    let model = |run: &str| std::fs::read(dir.join(run).join("model.safetensors")).unwrap();
    assert_eq!(model("a"), model("b"));
    // Evaluation reads the images as they are: eval on the test file gives the run's figure.
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("a"))
        .arg(repo().join("data/digits/test.csv")));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(metrics["accuracy"].as_f64().unwrap(), acc);

    // Misplaced augmentation: named by its config key, exit 2, no run folder.
    let refused = |text: String| {
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let out = dir.join("refused");
        let err = rejects(
            nabla()
                .args(["train", "-q"])
                .arg(&bad)
                .arg("--out")
                .arg(&out),
        );
        assert!(!out.exists(), "{err}");
        err
    };
    let flat = digits_cnn_with("").replace(
        "[[model.layers]]\ntype = \"reshape\"",
        "[[model.layers]]\ntype = \"random_flip\"\n\n[[model.layers]]\ntype = \"reshape\"",
    );
    let err = refused(flat);
    assert!(
        err.contains("model.layers[0]") && err.contains("[64]") && err.contains("reshape"),
        "{err}"
    );
    let err = refused(digits_cnn_with(&shift.replace("pixels = 1", "pixels = 8")));
    assert!(
        err.contains("model.layers[1].pixels") && err.contains("at most 7"),
        "{err}"
    );
    for (layer, message) in [
        (
            "type = \"random_rotation\"\ndegrees = 0",
            "model.layers[1].degrees: RandomRotation: degrees must be in (0, 180], got 0",
        ),
        (
            "type = \"random_zoom\"\nfactor = 1.5",
            "model.layers[1].factor: RandomZoom: factor must be in (0, 1), got 1.5",
        ),
    ] {
        let err = refused(digits_cnn_with(&format!("\n[[model.layers]]\n{layer}\n")));
        assert!(err.contains(message), "{err}");
    }
    let autoencoder = digits_cnn_with(shift)
        .replace(
            "target = \"digit\"",
            "target = \"digit\"\nreconstruct = true",
        )
        .replace("units = 10\n", "units = 64\n");
    let err = refused(autoencoder);
    assert!(
        err.contains("model.layers[1]") && err.contains("autoencoder"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The captions of a report's pictures of mistakes, in order.
fn figcaptions(report: &str) -> Vec<&str> {
    report
        .split("<figcaption>")
        .skip(1)
        .map(|c| c.split("</figcaption>").next().unwrap())
        .collect()
}

/// The digits of `data/digits/{split}.csv`, each as its class and 64 pixel values scaled to
/// 0-240, in the order a folder of class folders lists them: by class, then by row.
fn digits_by_class(split: &str) -> Vec<(u8, usize, Vec<u8>)> {
    let text = std::fs::read_to_string(repo().join(format!("data/digits/{split}.csv"))).unwrap();
    let mut rows: Vec<(u8, usize, Vec<u8>)> = text
        .lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let v: Vec<u8> = line.split(',').map(|x| x.parse().unwrap()).collect();
            (v[64], i, v[..64].iter().map(|p| p * 15).collect())
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_folder_of_images_trains_as_the_same_pixels_in_a_csv() {
    let dir = scratch("image-folder");
    // The digits as PNG files in class folders, and the same pixels as a CSV in the same order.
    for split in ["train", "test"] {
        let mut csv = (0..64).map(|i| format!("p{i},")).collect::<String>() + "class\n";
        for (class, row, pixels) in digits_by_class(split) {
            let path = dir.join(format!("images/{split}/{class}/{row:04}.png"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            image::GrayImage::from_raw(8, 8, pixels.clone())
                .unwrap()
                .save(&path)
                .unwrap();
            for p in pixels {
                csv += &format!("{p},");
            }
            csv += &format!("{class}\n");
        }
        std::fs::write(dir.join(format!("{split}.csv")), csv).unwrap();
    }
    let digits = std::fs::read_to_string(repo().join("examples/digits.toml")).unwrap();
    let config = |train: &str, test: &str, target: &str| {
        digits
            .replace("../data/digits/train.csv", train)
            .replace("../data/digits/test.csv", test)
            .replace("target = \"digit\"\n", target)
    };
    std::fs::write(
        dir.join("folder.toml"),
        config("images/train", "images/test", ""),
    )
    .unwrap();
    std::fs::write(
        dir.join("csv.toml"),
        config("train.csv", "test.csv", "target = \"class\"\n"),
    )
    .unwrap();
    let train = |name: &str| {
        let out = run(nabla()
            .args(["train", "-q", "--json", "--out"])
            .arg(dir.join(format!("runs/{name}")))
            .arg(dir.join(format!("{name}.toml"))));
        let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        summary["test"]["accuracy"].as_f64().unwrap()
    };
    let (folder_acc, csv_acc) = (train("folder"), train("csv"));
    let weights = |name: &str| std::fs::read(dir.join(format!("runs/{name}/model.safetensors")));
    assert!(
        weights("folder").unwrap() == weights("csv").unwrap(),
        "the same pixels in the same order give the same model, byte for byte"
    );
    assert_eq!(folder_acc, csv_acc);
    assert!(folder_acc > 0.95, "{folder_acc}");

    // eval reads a folder of class folders; predict names each image by its path.
    let run_dir = dir.join("runs/folder");
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(&run_dir)
        .arg(dir.join("images/test")));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(metrics["accuracy"].as_f64().unwrap(), folder_acc);
    let predictions = stdout(&run(nabla()
        .arg("predict")
        .arg(&run_dir)
        .arg(dir.join("images/test"))));
    let rows: Vec<&str> = predictions.lines().collect();
    assert!(
        rows[0].starts_with("file,predicted,p_0,p_1,"),
        "{}",
        rows[0]
    );
    assert_eq!(rows.len(), 360 + 1);
    let right = rows[1..]
        .iter()
        .filter(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            cells[0].split('/').next() == Some(cells[1])
        })
        .count();
    assert_eq!(
        right as f64 / 360.0,
        folder_acc,
        "the class folder is the truth"
    );
    // The report shows the test images got wrong with the highest probability, most
    // confident first, each with its classes, its file and its own pixels; the CSV run, whose
    // rows have no names, does not.
    let mut wrong: Vec<(f64, &str, &str)> = rows[1..]
        .iter()
        .filter_map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            let class: usize = cells[1].parse().unwrap();
            let p: f64 = cells[2 + class].parse().unwrap();
            (cells[0].split('/').next() != Some(cells[1])).then_some((p, cells[0], cells[1]))
        })
        .collect();
    wrong.sort_by(|a, b| b.0.total_cmp(&a.0));
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    let shown = wrong.len().min(12);
    assert!(shown > 0, "the digits MLP gets a few test images wrong");
    assert!(
        report.contains(&format!("({shown} of the {} wrong of 360;", 360 - right)),
        "the mistakes' count"
    );
    let captions = figcaptions(&report);
    assert_eq!(captions.len(), shown);
    for (caption, (p, file, predicted)) in captions.iter().zip(&wrong) {
        let truth = file.split('/').next().unwrap();
        assert_eq!(
            *caption,
            format!("{truth} → {predicted} ({p:.3})<br><code>{file}</code>")
        );
        let pixels = image::open(dir.join("images/test").join(file))
            .unwrap()
            .to_luma8()
            .into_raw();
        let png = nabla_train::image_grid::png(8, 8, 1, &pixels);
        let data = nabla_train::image_grid::base64(&png);
        assert!(report.contains(&data), "{file}: its pixels, scaling undone");
    }
    // The CSV run of the same pixels names the same rows by their lines in test.csv, most
    // confident first (row k of the folder's order is on line k + 2).
    let csv_report = std::fs::read_to_string(dir.join("runs/csv/report.html")).unwrap();
    let order: Vec<String> = digits_by_class("test")
        .iter()
        .map(|(class, row, _)| format!("{class}/{row:04}.png"))
        .collect();
    let lines: Vec<String> = wrong[..shown]
        .iter()
        .map(|(_, file, _)| {
            let k = order.iter().position(|f| f == file).unwrap();
            format!("test.csv:{}</code>", k + 2)
        })
        .collect();
    let named: Vec<&str> = csv_report
        .split("<tr><td><code>")
        .skip(1)
        .map(|row| row.split("</td>").next().unwrap())
        .collect();
    assert_eq!(named.len(), shown);
    for (name, line) in named.iter().zip(&lines) {
        assert!(name.ends_with(line.as_str()), "{name} for {line}");
    }
    assert!(csv_report.contains(&format!("({shown} of the {} wrong of 360;", 360 - right)));

    // One image: named by its file, with the same prediction as in its folder.
    let (path, prediction) = rows[1].split_once(',').unwrap();
    let one = stdout(&run(nabla()
        .arg("predict")
        .arg(&run_dir)
        .arg(dir.join("images/test").join(path))));
    let name = path.rsplit('/').next().unwrap();
    assert_eq!(one.lines().nth(1).unwrap(), format!("{name},{prediction}"));

    // Options that do not apply to a folder, and a folder's options on a CSV: named, exit 2,
    // no run folder.
    let refused = dir.join("runs/refused");
    let err = common::rejects_overrides(&dir.join("folder.toml"), &refused, &["data.target=class"]);
    assert!(
        err.contains("data.target") && err.contains("class folders they are in"),
        "{err}"
    );
    let err = common::rejects_overrides(
        &dir.join("folder.toml"),
        &refused,
        &["data.image.channels=2"],
    );
    assert!(
        err.contains("data.image.channels") && err.contains("1 channel (gray) or 3 (RGB)"),
        "{err}"
    );
    let err =
        common::rejects_overrides(&dir.join("csv.toml"), &refused, &["data.image.size=[8, 8]"]);
    assert!(
        err.contains("data.image") && err.contains("data.train is a file"),
        "{err}"
    );
    // One class folder: a classifier needs two (an autoencoder does not).
    std::fs::create_dir_all(dir.join("one")).unwrap();
    std::fs::rename(dir.join("images/train/3"), dir.join("one/3")).unwrap();
    let one = format!("data.train={:?}", dir.join("one"));
    let err = common::rejects_overrides(&dir.join("folder.toml"), &refused, &[&one]);
    assert!(
        err.contains("data.train") && err.contains("one class folder (3): a classifier needs"),
        "{err}"
    );
    assert!(!refused.exists());
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir.join("runs/one-autoencoder"))
        .arg(dir.join("folder.toml"))
        .args(["--set", &one, "--set", "data.reconstruct=true"])
        .args([
            "--set",
            "model.layers[2].units=64",
            "--set",
            "train.epochs=2",
        ])
        .args(["--set", &format!("data.test={:?}", dir.join("one"))]));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(summary["test"]["loss"].as_f64().unwrap().is_finite());
}
