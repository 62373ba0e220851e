//! Folders of images (PNG, JPEG, BMP, GIF, WebP) as examples, the layout Keras'
//! `image_dataset_from_directory` and torchvision's `ImageFolder` read: one subfolder per
//! class, named by the class (`train/cat/001.jpg`, `train/dog/002.jpg`), the classes sorted by
//! name. Each image becomes its pixel values 0-255 channel by channel, `[channels, height,
//! width]` flattened row-major into features `p0, p1, ...` (as IDX images: a `reshape` layer
//! gives a convolution its input), after its EXIF orientation is applied, its pixels converted
//! to the run's channels (1: gray, 3: RGB; alpha is dropped) and, where asked, the image
//! resized (bilinear, antialiased when shrinking).
//!
//! Files are read in name order, and decoded in parallel; the first bad file in that order is
//! the one an error names.

use crate::csv::{CsvSchema, Table, Target};
use crate::error::{Error, Result};
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageReader, Pixel, metadata::Orientation};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file extensions read as images (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "webp"];

/// How a folder's images become examples (a config's `data.image`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// `[height, width]` to resize every image to; default: the images' own size, which they
    /// must then all share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<[usize; 2]>,
    /// 1 (gray) or 3 (RGB); default: 1 when every training image is gray, else 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
}

/// The shape a run read its images in, saved with the run so that later images are read the
/// same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Whether images of another size are resized to this one (`data.image.size` was set);
    /// otherwise they are an error.
    pub resize: bool,
}

impl ImageShape {
    /// Values per image: channels x height x width.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether an image holds no values (a zero dimension).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Images read from a folder or file: the table (a class per image when read from class
/// folders) and each image's path, relative to the folder read, in the table's row order.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTable {
    pub table: Table,
    pub files: Vec<PathBuf>,
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Reads a training folder: one subfolder per class. The shape is `spec`'s, its defaults
/// filled from the images; the schema's classes are the folder names, sorted.
pub fn read_image_folder(
    dir: &Path,
    spec: &ImageSpec,
) -> Result<(ImageTable, CsvSchema, ImageShape)> {
    check_spec(dir, spec)?;
    let listing = list_class_folders(dir)?.ok_or_else(|| {
        Error::file(
            dir,
            "no class folders: put each class's images in a folder named by the class \
             (cat/001.jpg, dog/001.jpg, ...)",
        )
    })?;
    let splits = [
        "train",
        "training",
        "test",
        "testing",
        "valid",
        "validation",
        "val",
    ];
    if listing
        .classes
        .iter()
        .all(|c| splits.contains(&c.to_lowercase().as_str()))
    {
        return Err(Error::file(
            dir,
            format!(
                "the class folders are named {}: name the folder of one split (its folders \
                 are the classes, as in photos/train/cat/001.jpg)",
                crate::csv::listed(&listing.classes)
            ),
        ));
    }
    let headers = read_headers(dir, &listing.files)?;
    let channels = spec.channels.unwrap_or_else(|| {
        if headers.iter().any(|h| h.color) {
            3
        } else {
            1
        }
    });
    let (height, width) = match spec.size {
        Some([h, w]) => (h, w),
        None => {
            let first = &headers[0];
            if let Some((file, h)) =
                first_of_another_size(&listing.files, &headers, (first.height, first.width))
            {
                return Err(Error::file(
                    &dir.join(file),
                    format!(
                        "{} x {} pixels (height x width), but {} is {} x {}: to train on images \
                         of different sizes, set data.image.size = [height, width], the size \
                         to resize them to",
                        h.height,
                        h.width,
                        listing.files[0].display(),
                        first.height,
                        first.width
                    ),
                ));
            }
            (first.height, first.width)
        }
    };
    let shape = ImageShape {
        channels,
        height,
        width,
        resize: spec.size.is_some(),
    };
    let features = decode_all(dir, &listing.files, &shape)?;
    let schema = CsvSchema::pixels(shape.len(), "class", listing.classes);
    let rows = listing.files.len();
    let table = pixel_table(&schema, features, rows, Target::Classes(listing.labels));
    Ok((
        ImageTable {
            table,
            files: listing.files,
        },
        schema,
        shape,
    ))
}

/// Reads later images as a run read its training folder: `path` is a folder of class
/// folders (each image labelled by its folder's class, which must be a training class), a
/// folder of images (no labels), or one image file. `labelled`: the images must be in class
/// folders.
pub fn read_images_with(
    path: &Path,
    shape: &ImageShape,
    schema: &CsvSchema,
    labelled: bool,
) -> Result<ImageTable> {
    let (root, files, target) = if path.is_dir() {
        match list_class_folders(path)? {
            Some(listing) => {
                // Each folder's class, by name, as the training's class index.
                let trained: Vec<i64> = listing
                    .classes
                    .iter()
                    .map(|name| match schema.classes.iter().position(|c| c == name) {
                        Some(i) => Ok(i as i64),
                        None => Err(Error::file(
                            &path.join(name),
                            format!(
                                "class \"{name}\" is not one of the training classes ({})",
                                crate::csv::listed(&schema.classes)
                            ),
                        )),
                    })
                    .collect::<Result<_>>()?;
                let labels = listing.labels.iter().map(|&k| trained[k as usize]);
                (path, listing.files, Target::Classes(labels.collect()))
            }
            None if labelled => {
                return Err(Error::file(
                    path,
                    format!(
                        "no class folders: the images' classes are the names of the folders \
                         they are in ({})",
                        crate::csv::listed(&schema.classes)
                    ),
                ));
            }
            None => {
                let files = list_images(path, Path::new(""))?;
                if files.is_empty() {
                    return Err(Error::file(path, no_images()));
                }
                (path, files, Target::None)
            }
        }
    } else if labelled {
        return Err(Error::file(
            path,
            "one image has no class: give a folder with a folder per class",
        ));
    } else {
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        (
            path.parent().unwrap_or(Path::new("")),
            vec![name],
            Target::None,
        )
    };
    // Without resizing, every size is checked before anything is decoded. With it there is
    // nothing to check: a header pass would open every file twice, and decoding reports a
    // bad file the same way.
    if !shape.resize {
        let headers = read_headers(root, &files)?;
        if let Some((file, h)) =
            first_of_another_size(&files, &headers, (shape.height, shape.width))
        {
            return Err(Error::file(
                &root.join(file),
                format!(
                    "{} x {} pixels (height x width), but the model was trained on {} x {} \
                     images (resize it, or train with data.image.size set, which resizes \
                     every image)",
                    h.height, h.width, shape.height, shape.width
                ),
            ));
        }
    }
    let features = decode_all(root, &files, shape)?;
    let table = pixel_table(schema, features, files.len(), target);
    Ok(ImageTable { table, files })
}

fn check_spec(dir: &Path, spec: &ImageSpec) -> Result<()> {
    spec.check()
        .map_err(|(field, message)| Error::Invalid(format!("image {field}: {message}")))?;
    if !dir.is_dir() {
        return Err(Error::file(dir, "is not a folder"));
    }
    Ok(())
}

impl ImageSpec {
    /// The first field out of range, with what is wrong: `("channels", "...")`.
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if let Some(c) = self.channels
            && c != 1
            && c != 3
        {
            return Err((
                "channels",
                format!("{c}: images are read with 1 channel (gray) or 3 (RGB)"),
            ));
        }
        if let Some([h, w]) = self.size
            && (h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE)
        {
            return Err((
                "size",
                format!("[{h}, {w}]: height and width must be 1 to {MAX_SIDE} pixels"),
            ));
        }
        Ok(())
    }
}

/// The most one decoded image may take: the `image` crate's own default allocation limit,
/// which its `DynamicImage::from_decoder` does not apply. A 100-megapixel RGB photo fits.
const MAX_DECODED_BYTES: u64 = 512 << 20;

/// The largest resized side: a bound far above what a CPU trains on, so that a typo cannot
/// ask for terabytes.
const MAX_SIDE: usize = 8192;

/// The images of a folder of class folders, class by class.
struct ClassListing {
    /// Relative to the folder read: `cat/001.jpg`.
    files: Vec<PathBuf>,
    /// Each file's class, an index into `classes`.
    labels: Vec<i64>,
    classes: Vec<String>,
}

/// The class folders of `dir` and their images (searched through subfolders), or `None`
/// when `dir` has no subfolders. Hidden entries (`.git`, `.DS_Store`) and files without an
/// image extension are skipped; an image beside the class folders is an error.
fn list_class_folders(dir: &Path) -> Result<Option<ClassListing>> {
    let entries = sorted_entries(dir)?;
    let folders: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    if folders.is_empty() {
        return Ok(None);
    }
    if let Some(loose) = entries
        .iter()
        .find(|p| !p.is_dir() && has_image_extension(p))
    {
        return Err(Error::file(
            loose,
            "an image beside the class folders: move it into the folder of its class",
        ));
    }
    let mut listing = ClassListing {
        files: Vec::new(),
        labels: Vec::new(),
        classes: Vec::new(),
    };
    for folder in folders {
        let name = entry_name(folder)?;
        let images = list_images(folder, Path::new(&name))?;
        if images.is_empty() {
            return Err(Error::file(folder, no_images()));
        }
        let class = listing.classes.len() as i64;
        listing
            .labels
            .extend(std::iter::repeat_n(class, images.len()));
        listing.files.extend(images);
        listing.classes.push(name);
    }
    Ok(Some(listing))
}

/// The image files under `dir`, through its subfolders, in name order, each as `prefix`
/// joined with its path below `dir`.
fn list_images(dir: &Path, prefix: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in sorted_entries(dir)? {
        let relative = prefix.join(entry_name(&entry)?);
        if entry.is_dir() {
            found.extend(list_images(&entry, &relative)?);
        } else if has_image_extension(&entry) {
            found.push(relative);
        }
    }
    Ok(found)
}

/// The entries of `dir` but hidden ones, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = entry.map_err(Error::io(dir))?.path();
        if !entry_name(&path)?.starts_with('.') {
            entries.push(path);
        }
    }
    entries.sort();
    Ok(entries)
}

fn entry_name(path: &Path) -> Result<String> {
    let name = path.file_name().unwrap_or_default();
    name.to_str().map(str::to_owned).ok_or_else(|| {
        Error::file(
            path,
            "the name is not valid UTF-8: rename it (class names and file names are written \
             to the run's files)",
        )
    })
}

fn no_images() -> String {
    format!(
        "no images (files named *.{})",
        IMAGE_EXTENSIONS.join(", *.")
    )
}

/// What an image's header says, its EXIF orientation applied.
struct Header {
    height: usize,
    width: usize,
    /// Whether it has colour channels (else gray).
    color: bool,
}

fn open(path: &Path) -> Result<(impl ImageDecoder, Orientation)> {
    let bad = |e: image::ImageError| Error::file(path, format!("not a readable image: {e}"));
    let reader = ImageReader::open(path)
        .and_then(ImageReader::with_guessed_format)
        .map_err(Error::io(path))?;
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let orientation = decoder.orientation().map_err(bad)?;
    Ok((decoder, orientation))
}

fn read_header(path: &Path) -> Result<Header> {
    let (decoder, orientation) = open(path)?;
    let (w, h) = decoder.dimensions();
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (height, width) = if turned { (w, h) } else { (h, w) };
    Ok(Header {
        height: height as usize,
        width: width as usize,
        color: decoder.color_type().has_color(),
    })
}

/// The first file whose image is not `(height, width)`.
fn first_of_another_size<'a>(
    files: &'a [PathBuf],
    headers: &'a [Header],
    size: (usize, usize),
) -> Option<(&'a PathBuf, &'a Header)> {
    files
        .iter()
        .zip(headers)
        .find(|(_, h)| (h.height, h.width) != size)
}

/// Every file's header, in parallel; the first bad file in order is the error (collected
/// whole first: rayon's `collect` into a `Result` keeps whichever error a thread met first).
fn read_headers(root: &Path, files: &[PathBuf]) -> Result<Vec<Header>> {
    let headers: Vec<Result<Header>> = files
        .par_iter()
        .map(|f| read_header(&root.join(f)))
        .collect();
    headers.into_iter().collect()
}

/// Decodes every file into one table row of `shape`'s values, in parallel.
/// The images' pixels, row after row, decoded in parallel; first the memory they and their
/// names take is checked against what the machine has (so the caller makes the names after:
/// a pixel's name and schema column cost more than its value).
fn decode_all(root: &Path, files: &[PathBuf], shape: &ImageShape) -> Result<Vec<f64>> {
    let width = shape.len();
    let bytes = (files.len() as f64 * 8.0 + BYTES_PER_PIXEL_NAME) * width as f64;
    let available = crate::available_memory().unwrap_or(u64::MAX);
    let mut features = Vec::new();
    if bytes > available as f64 || features.try_reserve_exact(files.len() * width).is_err() {
        let gb = |b: f64| b / 1e9;
        return Err(Error::file(
            root,
            format!(
                "{} images of {} x {} x {} values take {:.1} GB to read (8 bytes a value, \
                 {BYTES_PER_PIXEL_NAME} a pixel's name), more than the {:.1} GB of memory \
                 available: resize them smaller (data.image.size) or use fewer",
                files.len(),
                shape.channels,
                shape.height,
                shape.width,
                gb(bytes),
                gb(available as f64)
            ),
        ));
    }
    features.resize(files.len() * width, 0.0);
    // Collected in order, so that the error is the first bad file's whatever the threads did.
    let outcomes: Vec<Result<()>> = features
        .par_chunks_mut(width.max(1))
        .zip(files)
        .map(|(row, file)| decode_into(&root.join(file), shape, row))
        .collect();
    outcomes.into_iter().collect::<Result<()>>()?;
    Ok(features)
}

/// A table of image rows under `schema`'s pixel names.
fn pixel_table(schema: &CsvSchema, features: Vec<f64>, rows: usize, target: Target) -> Table {
    Table {
        feature_names: schema.features.iter().map(|f| f.name.clone()).collect(),
        features,
        rows,
        target,
        lines: None,
    }
}

/// About what each pixel's feature name costs: its column in the schema, its name in the
/// table, and both again while the run's `preprocessing.json` is written.
const BYTES_PER_PIXEL_NAME: f64 = 200.0;

/// One image's values, channel-major, into `row`.
fn decode_into(path: &Path, shape: &ImageShape, row: &mut [f64]) -> Result<()> {
    let (decoder, orientation) = open(path)?;
    // The decoder allocates what its header claims: a corrupt header can claim terabytes.
    let bytes = decoder.total_bytes();
    if bytes > MAX_DECODED_BYTES {
        let (w, h) = decoder.dimensions();
        return Err(Error::file(
            path,
            format!(
                "{h} x {w} pixels (height x width) would take {} MiB to decode, above the \
                 limit of {} MiB: shrink the image",
                bytes >> 20,
                MAX_DECODED_BYTES >> 20
            ),
        ));
    }
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|e| Error::file(path, format!("not a readable image: {e}")))?;
    image.apply_orientation(orientation);
    let plane = shape.height * shape.width;
    match shape.channels {
        1 => {
            let gray = fit(image.to_luma8(), shape);
            for (value, &p) in row.iter_mut().zip(gray.as_raw()) {
                *value = f64::from(p);
            }
        }
        _ => {
            // Interleaved RGB to channel planes.
            let rgb = fit(image.to_rgb8(), shape);
            for (i, pixel) in rgb.as_raw().chunks_exact(3).enumerate() {
                for (c, &p) in pixel.iter().enumerate() {
                    row[c * plane + i] = f64::from(p);
                }
            }
        }
    }
    Ok(())
}

/// The image at `shape`'s size: as it is, or resized (bilinear; the filter widens with the
/// shrinking factor, so that a large photo is averaged, not sampled).
fn fit<P: Pixel<Subpixel = u8> + 'static>(
    image: ImageBuffer<P, Vec<u8>>,
    shape: &ImageShape,
) -> ImageBuffer<P, Vec<u8>> {
    let (w, h) = (shape.width as u32, shape.height as u32);
    if image.dimensions() == (w, h) {
        image
    } else {
        image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle)
    }
}
