//! Folders of images read as tables: the layout (class folders, name order, skipped entries),
//! every format's pixels, channels, resizing, EXIF orientation, and the errors that name the
//! file at fault.

use image::{ImageEncoder, Rgb, RgbImage};
use nabla_data::{ImageShape, ImageSpec, Target, read_image_folder, read_images_with};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nabla-images-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A gray image whose pixel (row r, column c) is `f(r, c)`.
fn gray(h: u32, w: u32, f: impl Fn(u32, u32) -> u8) -> image::GrayImage {
    image::GrayImage::from_fn(w, h, |c, r| image::Luma([f(r, c)]))
}

fn save(image: &image::DynamicImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image.save(path).unwrap();
}

fn default_spec() -> ImageSpec {
    ImageSpec::default()
}

/// The error of reading the folder `dir` with `spec`.
fn folder_error(dir: &Path, spec: &ImageSpec) -> String {
    read_image_folder(dir, spec).unwrap_err().to_string()
}

fn classes(target: &Target) -> Vec<i64> {
    match target {
        Target::Classes(c) => c.clone(),
        other => panic!("no classes: {other:?}"),
    }
}

#[test]
fn a_folder_of_class_folders_is_read_class_by_class_in_name_order() {
    let dir = scratch("layout");
    // Classes written out of order; a nested folder inside a class; entries to skip.
    let value =
        |k: u8| image::DynamicImage::ImageLuma8(gray(2, 3, move |r, c| k * 10 + (r * 3 + c) as u8));
    save(&value(1), &dir.join("zebra/b.png"));
    save(&value(2), &dir.join("zebra/a.png"));
    save(&value(3), &dir.join("cat/sub/x.png"));
    save(&value(4), &dir.join("cat/a.PNG"));
    std::fs::write(dir.join("cat/notes.txt"), "not an image").unwrap();
    std::fs::write(dir.join("cat/.hidden.png"), "not an image either").unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();

    let (images, schema, shape) = read_image_folder(&dir, &default_spec()).unwrap();
    assert_eq!(schema.classes, ["cat", "zebra"]);
    let files: Vec<String> = images
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    assert_eq!(
        files,
        ["cat/a.PNG", "cat/sub/x.png", "zebra/a.png", "zebra/b.png"]
    );
    assert_eq!(classes(&images.table.target), [0, 0, 1, 1]);
    assert_eq!(
        shape,
        ImageShape {
            channels: 1,
            height: 2,
            width: 3,
            resize: false
        }
    );
    assert_eq!(images.table.width(), 6);
    assert_eq!(schema.features.len(), 6);
    // Row-major pixel values, exactly (PNG is lossless).
    let row = |i: usize| &images.table.features[i * 6..(i + 1) * 6];
    assert_eq!(row(0), [40.0, 41.0, 42.0, 43.0, 44.0, 45.0]);
    assert_eq!(row(1), [30.0, 31.0, 32.0, 33.0, 34.0, 35.0]);
    assert_eq!(row(3), [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]);
}

#[test]
fn color_images_are_channel_planes_and_gray_only_when_every_image_is() {
    let dir = scratch("channels");
    let rgb = RgbImage::from_fn(2, 2, |c, r| Rgb([(10 * r + c) as u8, 100, 200 + c as u8]));
    save(&rgb.clone().into(), &dir.join("a/1.png"));
    save(&gray(2, 2, |_, _| 77).into(), &dir.join("b/1.png"));

    let (images, _, shape) = read_image_folder(&dir, &default_spec()).unwrap();
    assert_eq!(shape.channels, 3, "one colour image makes the run RGB");
    // [channels, height, width]: the red plane, the green plane, the blue plane.
    assert_eq!(
        &images.table.features[..12],
        [
            0.0, 1.0, 10.0, 11.0, 100.0, 100.0, 100.0, 100.0, 200.0, 201.0, 200.0, 201.0
        ]
    );
    // A gray image read as RGB repeats its value in every channel.
    assert!(images.table.features[12..].iter().all(|&v| v == 77.0));

    // Asked for one channel: gray stays itself, colour becomes its luma (between its channels).
    let spec = ImageSpec {
        channels: Some(1),
        ..default_spec()
    };
    let (images, _, shape) = read_image_folder(&dir, &spec).unwrap();
    assert_eq!(shape.channels, 1);
    let luma = &images.table.features[..4];
    for (i, &y) in luma.iter().enumerate() {
        let (r, b) = (rgb.as_raw()[3 * i] as f64, rgb.as_raw()[3 * i + 2] as f64);
        assert!(y > r.min(100.0) && y < b, "pixel {i}: luma {y}");
    }
    assert!(images.table.features[4..].iter().all(|&v| v == 77.0));
}

#[test]
fn every_advertised_format_decodes_to_the_pixels_written() {
    let dir = scratch("formats");
    let ramp = gray(4, 5, |r, c| (r * 50 + c * 7) as u8);
    let rgb = image::DynamicImage::ImageLuma8(ramp.clone()).to_rgb8();
    // Lossless encodings of the same pixels (GIF: a palette of the 20 gray levels).
    save(&ramp.clone().into(), &dir.join("ramp/a.png"));
    save(&rgb.clone().into(), &dir.join("ramp/b.bmp"));
    save(&rgb.clone().into(), &dir.join("ramp/c.gif"));
    save(
        &image::DynamicImage::ImageRgb8(rgb.clone())
            .to_rgba8()
            .into(),
        &dir.join("ramp/d.webp"),
    );
    let spec = ImageSpec {
        channels: Some(1),
        ..default_spec()
    };
    let (images, schema, _) = read_image_folder(&dir, &spec).unwrap();
    let expected: Vec<f64> = ramp.as_raw().iter().map(|&p| f64::from(p)).collect();
    for (i, file) in images.files.iter().enumerate() {
        assert_eq!(
            &images.table.features[i * 20..(i + 1) * 20],
            expected.as_slice(),
            "{}",
            file.display()
        );
    }
    assert_eq!(images.files.len(), 4);

    // JPEG is lossy: a smooth image comes back close.
    let smooth = RgbImage::from_fn(16, 16, |c, r| Rgb([(r * 8) as u8, (c * 8) as u8, 128]));
    save(&smooth.clone().into(), &dir.join("photos/a.jpg"));
    let shape = ImageShape {
        channels: 3,
        height: 16,
        width: 16,
        resize: false,
    };
    let back = read_images_with(&dir.join("photos/a.jpg"), &shape, &schema, false).unwrap();
    let worst = (0..256)
        .flat_map(|i| (0..3).map(move |c| (i, c)))
        .map(|(i, c)| {
            (back.table.features[c * 256 + i] - f64::from(smooth.as_raw()[3 * i + c])).abs()
        })
        .fold(0.0, f64::max);
    assert!(worst <= 8.0, "JPEG error {worst}");
}

#[test]
fn images_of_different_sizes_are_an_error_unless_a_size_is_set() {
    let dir = scratch("sizes");
    save(&gray(4, 6, |_, _| 90).into(), &dir.join("a/1.png"));
    save(
        &gray(8, 12, |_, c| (c * 20) as u8).into(),
        &dir.join("a/2.png"),
    );
    save(&gray(4, 6, |_, _| 90).into(), &dir.join("b/1.png"));

    let err = folder_error(&dir, &default_spec());
    assert!(
        err.contains("a/2.png: 8 x 12 pixels (height x width), but a/1.png is 4 x 6")
            && err.contains("data.image.size"),
        "{err}"
    );

    let spec = ImageSpec {
        size: Some([4, 6]),
        ..default_spec()
    };
    let (images, _, shape) = read_image_folder(&dir, &spec).unwrap();
    assert!(shape.resize);
    assert_eq!(images.table.width(), 24);
    // A constant image stays constant; a horizontal ramp halved stays an increasing ramp,
    // the same in every row, inside the original's range.
    assert!(images.table.features[..24].iter().all(|&v| v == 90.0));
    let ramp = &images.table.features[24..48];
    for r in 0..4 {
        let row = &ramp[r * 6..(r + 1) * 6];
        assert_eq!(row, &ramp[..6]);
        assert!(row.windows(2).all(|w| w[0] < w[1]), "{row:?}");
        assert!(row[0] >= 0.0 && row[5] <= 220.0, "{row:?}");
    }

    // A later image of another size: resized when training resized, else named.
    let fixed = ImageShape {
        resize: false,
        ..shape
    };
    let schema = read_image_folder(&dir, &spec).unwrap().1;
    let err = read_images_with(&dir.join("a/2.png"), &fixed, &schema, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2.png: 8 x 12 pixels (height x width), but the model was trained on 4 x 6"),
        "{err}"
    );
    let later = read_images_with(&dir.join("a/2.png"), &shape, &schema, false).unwrap();
    assert_eq!(later.table.features, ramp);
}

#[test]
fn the_exif_orientation_is_applied() {
    let dir = scratch("exif");
    // Pixels 0..6 in a 2 x 3 image, stored with EXIF orientation 6 (rotate 90° clockwise).
    let stored = gray(2, 3, |r, c| (r * 3 + c) as u8);
    let exif: Vec<u8> = [
        b"II*\0".as_slice(),
        &8u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &0x0112u16.to_le_bytes(),
        &3u16.to_le_bytes(),
        &1u32.to_le_bytes(),
        &6u16.to_le_bytes(),
        &[0, 0],
        &0u32.to_le_bytes(),
    ]
    .concat();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    let mut file = std::fs::File::create(dir.join("a/turned.png")).unwrap();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut file);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(stored.as_raw(), 3, 2, image::ExtendedColorType::L8)
        .unwrap();
    drop(file);

    let (images, _, shape) = read_image_folder(&dir, &default_spec()).unwrap();
    assert_eq!(
        (shape.height, shape.width),
        (3, 2),
        "upright: 3 high, 2 wide"
    );
    // Rotated clockwise, the stored bottom-left pixel (3) is the top-left.
    assert_eq!(images.table.features, [3.0, 0.0, 4.0, 1.0, 5.0, 2.0]);
}

#[test]
fn later_images_are_labelled_by_training_class_names_or_named_only() {
    let dir = scratch("later");
    for (class, v) in [("cat", 10), ("dog", 20), ("owl", 30)] {
        save(
            &gray(2, 2, move |_, _| v).into(),
            &dir.join("train").join(class).join("1.png"),
        );
    }
    let (_, schema, shape) = read_image_folder(&dir.join("train"), &default_spec()).unwrap();

    // A test folder with some of the classes: labelled by name, not by position.
    save(&gray(2, 2, |_, _| 30).into(), &dir.join("test/owl/9.png"));
    let test = read_images_with(&dir.join("test"), &shape, &schema, true).unwrap();
    assert_eq!(classes(&test.table.target), [2]);

    save(&gray(2, 2, |_, _| 1).into(), &dir.join("test/emu/1.png"));
    let err = read_images_with(&dir.join("test"), &shape, &schema, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("emu: class \"emu\" is not one of the training classes (cat, dog, owl)"),
        "{err}"
    );

    // Images without classes: a flat folder or one file, for predictions only.
    save(&gray(2, 2, |_, _| 5).into(), &dir.join("flat/b.png"));
    save(&gray(2, 2, |_, _| 6).into(), &dir.join("flat/a.png"));
    let flat = read_images_with(&dir.join("flat"), &shape, &schema, false).unwrap();
    assert_eq!(flat.table.target, Target::None);
    assert_eq!(flat.files, [PathBuf::from("a.png"), PathBuf::from("b.png")]);
    assert_eq!(
        flat.table.features,
        [6.0; 4]
            .iter()
            .chain(&[5.0; 4])
            .copied()
            .collect::<Vec<_>>()
    );
    let err = read_images_with(&dir.join("flat"), &shape, &schema, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("flat: no class folders"), "{err}");
    let one = read_images_with(&dir.join("flat/b.png"), &shape, &schema, false).unwrap();
    assert_eq!((one.table.rows, one.files[0].to_str()), (1, Some("b.png")));
    let err = read_images_with(&dir.join("flat/b.png"), &shape, &schema, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("b.png: one image has no class"), "{err}");
}

#[test]
fn bad_folders_and_files_are_named() {
    let dir = scratch("bad");
    let spec = default_spec();
    let message = |path: &Path| folder_error(path, &spec);

    std::fs::create_dir_all(dir.join("empty")).unwrap();
    assert!(message(&dir.join("empty")).contains("empty: no class folders"));
    assert!(message(&dir.join("missing")).contains("missing: is not a folder"));

    save(&gray(2, 2, |_, _| 0).into(), &dir.join("loose/a/1.png"));
    save(&gray(2, 2, |_, _| 0).into(), &dir.join("loose/stray.png"));
    let err = message(&dir.join("loose"));
    assert!(
        err.contains("stray.png: an image beside the class folders"),
        "{err}"
    );

    // The folder above the splits: its "classes" would be the splits.
    save(
        &gray(2, 2, |_, _| 0).into(),
        &dir.join("photos/train/cat/1.png"),
    );
    save(
        &gray(2, 2, |_, _| 0).into(),
        &dir.join("photos/Test/cat/1.png"),
    );
    let err = message(&dir.join("photos"));
    assert!(
        err.contains(
            "photos: the class folders are named Test, train: name the folder of one split"
        ),
        "{err}"
    );

    save(&gray(2, 2, |_, _| 0).into(), &dir.join("hollow/a/1.png"));
    std::fs::create_dir_all(dir.join("hollow/b")).unwrap();
    std::fs::write(dir.join("hollow/b/readme.txt"), "x").unwrap();
    let err = message(&dir.join("hollow"));
    assert!(
        err.contains("hollow/b: no images (files named *.png, *.jpg"),
        "{err}"
    );

    // A corrupt file among good ones: the error names it, whichever thread met it.
    for i in 0..20 {
        save(
            &gray(2, 2, |_, _| 0).into(),
            &dir.join(format!("corrupt/a/{i:02}.png")),
        );
    }
    std::fs::write(dir.join("corrupt/a/07.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(dir.join("corrupt/a/15.png"), b"garbage").unwrap();
    let err = message(&dir.join("corrupt"));
    assert!(err.contains("a/07.png: not a readable image"), "{err}");

    // Resized to 8192 x 8192 RGB, 200 images would take 322 GB: refused before decoding.
    for i in 0..200 {
        save(
            &gray(1, 1, |_, _| 0).into(),
            &dir.join(format!("many/a/{i:03}.png")),
        );
    }
    let spec = ImageSpec {
        size: Some([8192, 8192]),
        channels: Some(3),
    };
    let err = folder_error(&dir.join("many"), &spec);
    assert!(
        err.contains("many: 200 images of 3 x 8192 x 8192 values take 362.4 GB to read")
            && err.contains("resize them smaller"),
        "{err}"
    );

    for (channels, size, what) in [
        (
            Some(2),
            None,
            "image channels: 2: images are read with 1 channel (gray) or 3 (RGB)",
        ),
        (
            None,
            Some([0, 5]),
            "image size: [0, 5]: height and width must be 1 to 8192 pixels",
        ),
    ] {
        let spec = ImageSpec { size, channels };
        let err = folder_error(&dir.join("loose"), &spec);
        assert_eq!(err, what);
    }
}

#[test]
fn an_image_whose_header_claims_gigabytes_is_refused_before_decoding() {
    let dir = scratch("huge");
    // A PNG header for 60,000 x 60,000 RGB pixels (10 GB decoded), then an empty IDAT.
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        [
            &(data.len() as u32).to_be_bytes(),
            kind,
            data,
            &crc.sum().to_be_bytes(),
        ]
        .concat()
    };
    let side = 60_000u32.to_be_bytes();
    let header = [&side[..], &side, &[8, 2, 0, 0, 0]].concat();
    let png = [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        &chunk(b"IHDR", &header),
        &chunk(b"IDAT", &[]),
    ]
    .concat();
    std::fs::write(dir.join("huge.png"), png).unwrap();
    let shape = ImageShape {
        channels: 1,
        height: 4,
        width: 4,
        resize: true,
    };
    let schema = nabla_data::CsvSchema {
        features: Vec::new(),
        target: "class".into(),
        task: nabla_data::Task::Classification,
        classes: vec!["a".into()],
        missing: nabla_data::Missing::Error,
    };
    let err = read_images_with(&dir.join("huge.png"), &shape, &schema, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("huge.png: 60000 x 60000 pixels (height x width) would take 10299 MiB")
            && err.contains("limit of 512 MiB"),
        "{err}"
    );
}
