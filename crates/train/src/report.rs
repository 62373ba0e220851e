//! The run report: one self-contained HTML file (no scripts, no network) with SVG plots drawn by
//! `plotters`: loss and the main metric per epoch (train and validation), the learning rate,
//! per-layer gradient norms over training, a confusion matrix (classification) or predicted
//! against true values (regression), the final metrics and the resolved config.

use crate::doctor::LayerDiagnostics;
use crate::error::{Error, Result};
use crate::experiment::RunRecord;
use plotters::prelude::*;
use std::fmt::Write;

/// How the final model does on held-out data, for the report's last plot.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    /// `matrix[true][predicted]` counts, and the examples got wrong most confidently where
    /// the data names them (images, CSV rows and sequences, IDX images; not a series'
    /// windows).
    Confusion {
        split: String,
        classes: Vec<String>,
        matrix: Vec<Vec<usize>>,
        mistakes: Option<Mistakes>,
    },
    /// `(true, predicted)` pairs, in the target's units, and the examples predicted worst
    /// where the data names them (CSV rows and sequences; not a series' windows).
    Regression {
        split: String,
        pairs: Vec<(f64, f64)>,
        worst: Option<Mistakes>,
    },
    /// An autoencoder's examples and reconstructions.
    Reconstruction(crate::autoencoder::Reconstructions),
    /// A GAN's samples under real examples.
    Samples(ImageRows),
    /// Text a character model wrote after a prompt from the data.
    Text(TextSample),
}

/// The examples of a split a model got most wrong: those a classifier got wrong with the
/// highest probability on the wrong class, or those a regression predicted with the largest
/// error. A mislabelled image or CSV row, or a mistyped value, tends to be here.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistakes {
    /// What the examples are, plural: `images`, `rows`, `sequences`.
    pub noun: String,
    /// Highest score first.
    pub examples: Vec<Mistake>,
    /// How many examples of the split a classifier got wrong in all; `None` for a regression.
    pub wrong: Option<usize>,
    /// How many examples the split has.
    pub total: usize,
}

/// One example a model got wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistake {
    /// Where the example is: an image's path inside its folder, `file:line` for a CSV row
    /// (a sequence: its first row), `file #index` for an IDX image.
    pub name: String,
    /// The true and the predicted class, or value.
    pub truth: String,
    pub predicted: String,
    /// The probability the classifier gave the predicted class, or the absolute error.
    pub score: f64,
    pub inputs: ShownInputs,
}

/// An example's inputs as the report shows them, in the data's own units (the scaling
/// undone).
#[derive(Debug, Clone, PartialEq)]
pub enum ShownInputs {
    /// An image: `[channels, height, width]` and its pixels 0-255, channel-major.
    Pixels { shape: [usize; 3], pixels: Vec<u8> },
    /// Each input column's name and value (a categorical column: its category).
    Columns(Vec<(String, String)>),
    /// Not shown: whitened inputs cannot be mapped back, and a sequence's steps are too many
    /// to list.
    Hidden,
}

/// What a character model wrote after a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSample {
    /// Where the prompt comes from (`the test text`).
    pub source: String,
    pub prompt: String,
    pub generated: String,
    pub temperature: f64,
}

/// Real examples and generated ones, each as flat preprocessed values.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRows {
    /// The split the real examples come from.
    pub split: String,
    /// `[height, width]` when the examples are square grayscale images.
    pub image: Option<[usize; 2]>,
    pub real: Vec<Vec<f64>>,
    pub generated: Vec<Vec<f64>>,
}

/// What a report shows.
pub struct ReportInput<'a> {
    pub title: &'a str,
    pub record: &'a RunRecord,
    pub config_toml: &'a str,
    pub evaluation: Option<Evaluation>,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 340;
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("drawing the report: {e}"))
}

/// One line chart: named series of `(epoch, value)` points; `log` for a logarithmic y axis.
fn line_chart(
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log: bool,
) -> Result<String> {
    xy_chart(title, "epoch", y_label, series, log)
}

/// [`line_chart`] with any quantity along x (an SVG document).
pub(crate) fn xy_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log: bool,
) -> Result<String> {
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let finite: Vec<(f64, f64)> = points
        .filter(|(_, y)| y.is_finite() && (!log || *y > 0.0))
        .copied()
        .collect();
    if finite.is_empty() {
        return Ok(format!("<p class=\"empty\">{title}: no data</p>"));
    }
    let (mut x0, mut x1) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    if x1 <= x0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let (mut y0, mut y1) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if log {
        y0 /= 1.5;
        y1 *= 1.5;
    } else {
        let pad = ((y1 - y0) * 0.05).max(1e-9 * y1.abs().max(1.0));
        y0 -= pad;
        y1 += pad;
    }
    // The same series and legend on either kind of y axis (the chart types differ).
    macro_rules! draw_lines {
        ($chart:ident) => {
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let pts: Vec<(f64, f64)> = pts
                    .iter()
                    .filter(|p| p.1.is_finite() && (!log || p.1 > 0.0))
                    .copied()
                    .collect();
                $chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(plot_err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            $chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        };
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64);
        if log {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .y_label_formatter(&|v| format!("{v:.1e}"))
                .draw()
                .map_err(plot_err)?;
            draw_lines!(chart);
        } else {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(plot_err)?;
            draw_lines!(chart);
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn confusion_chart(classes: &[String], matrix: &[Vec<usize>], split: &str) -> Result<String> {
    let k = classes.len().max(1);
    let side = (40 * k as u32 + 120).clamp(320, 720);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (side, side)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        // Cells are centred on integer coordinates, so that the axis ticks (at integers) fall
        // on cell centres and can carry the class names.
        let span = -0.5..k as f64 - 0.5;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Confusion matrix ({split})"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(span.clone(), span)
            .map_err(plot_err)?;
        let name = |v: f64, flip: bool| -> String {
            let i = v.round();
            if (v - i).abs() > 1e-6 || i < 0.0 || i as usize >= k {
                return String::new();
            }
            let i = if flip { k - 1 - i as usize } else { i as usize };
            classes.get(i).cloned().unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&|v| name(*v, false))
            .y_label_formatter(&|v| name(*v, true))
            .draw()
            .map_err(plot_err)?;
        let row_totals: Vec<usize> = matrix.iter().map(|r| r.iter().sum()).collect();
        let cells: Vec<(f64, f64, usize, f64)> = matrix
            .iter()
            .enumerate()
            .flat_map(|(t, row)| {
                let total = row_totals[t].max(1) as f64;
                let y = (k - 1 - t) as f64;
                row.iter()
                    .enumerate()
                    .map(move |(p, &c)| (p as f64, y, c, c as f64 / total))
            })
            .collect();
        chart
            .draw_series(cells.iter().map(|&(x, y, _, share)| {
                let shade = (255.0 * (1.0 - share)) as u8;
                Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    RGBColor(shade, shade, 255).filled(),
                )
            }))
            .map_err(plot_err)?;
        chart
            .draw_series(cells.iter().filter(|c| c.2 > 0).map(|&(x, y, c, share)| {
                let color = if share > 0.5 { WHITE } else { BLACK };
                Text::new(
                    c.to_string(),
                    (x - 0.2, y + 0.2),
                    ("sans-serif", 13).into_font().color(&color),
                )
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn scatter_chart(pairs: &[(f64, f64)], split: &str) -> Result<String> {
    let (lo, hi) = pairs
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return Ok("<p class=\"empty\">no predictions</p>".into());
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let (lo, hi) = (lo - pad, hi + pad);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (HEIGHT + 60, HEIGHT + 60)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Predicted vs true ({split})"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("true")
            .y_desc("predicted")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(vec![(lo, lo), (hi, hi)], BLACK.mix(0.4)))
            .map_err(plot_err)?;
        chart
            .draw_series(
                pairs
                    .iter()
                    .map(|&(t, p)| Circle::new((t, p), 3, PALETTE[0].mix(0.7).filled())),
            )
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The examples above their reconstructions (and the corrupted copies a denoising autoencoder
/// reads between them), as one PNG grid, or a note when the inputs are not square images; on
/// labelled data, one example per class.
fn reconstruction_figure(r: &crate::autoencoder::Reconstructions) -> String {
    let title = format!("Reconstructions on the {} data", r.split);
    let Some(image) = r.image else {
        return no_picture(&title, &r.inputs);
    };
    let mut rows = vec![view(&r.inputs)];
    let mut caption = match &r.classes {
        Some(classes) => format!(
            "one example of each class, left to right: {}; top: inputs",
            classes.join(", ")
        ),
        None => String::from("top: inputs"),
    };
    if let Some(c) = &r.corrupted {
        rows.push(view(c));
        caption.push_str("; middle: the corrupted copies the model reads");
    }
    rows.push(view(&r.outputs));
    caption.push_str("; bottom: reconstructions");
    image_figure(&title, &caption, &rows, image, &r.inputs)
}

/// An autoencoder's reconstruction MSE per class, the worst marked: the classes its code
/// serves worst.
fn class_error_table(record: &RunRecord) -> String {
    let Some(errors) = &record.class_errors else {
        return String::new();
    };
    let split = record
        .code
        .as_ref()
        .map_or("held-out", |c| c.split.as_str());
    let worst = errors
        .iter()
        .map(|e| e.mse)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut out = format!(
        "<h2>Reconstruction error per class</h2><p>MSE over the {} data's examples of each \
         class; the worst in bold.</p><table class=\"metrics\"><tr><th>class</th>\
         <th>examples</th><th>MSE</th></tr>",
        escape(split)
    );
    for e in errors {
        let mse = if e.mse == worst {
            format!("<b>{:.5}</b>", e.mse)
        } else {
            format!("{:.5}", e.mse)
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{mse}</td></tr>",
            escape(&e.class),
            e.examples
        ));
    }
    out.push_str("</table>\n");
    out
}

/// A GAN's samples under a row of real examples, as one PNG grid.
fn samples_figure(s: &ImageRows) -> String {
    let title = "Samples of the generator";
    let Some(image) = s.image else {
        return no_picture(title, &s.generated);
    };
    let mut rows = vec![view(&s.real)];
    let columns = s.real.len().max(1);
    rows.extend(s.generated.chunks(columns).map(view));
    image_figure(
        title,
        &format!(
            "top: real examples ({} data); below: samples of the generator from a fixed noise \
             (the same each epoch)",
            s.split
        ),
        &rows,
        image,
        &s.real,
    )
}

fn no_picture(title: &str, examples: &[Vec<f64>]) -> String {
    format!(
        "<p class=\"empty\">{}: the examples ({} values) are not square images, so there is no \
         picture of them.</p>",
        escape(title),
        examples.first().map_or(0, Vec::len)
    )
}

/// Rows of images as one embedded PNG, on one gray scale for every row: the range of `scale`
/// (the real examples), so that a washed-out output shows.
fn image_figure(
    title: &str,
    caption: &str,
    rows: &[Vec<&[f64]>],
    [height, width]: [usize; 2],
    scale: &[Vec<f64>],
) -> String {
    let (low, high) = scale
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let png = crate::image_grid::grid_png(rows, height, width, (low, high));
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    // Scaled up without smoothing: about 48 screen pixels per image side.
    let zoom = (48 / height.max(1)).max(2);
    format!(
        "<p><b>{title}</b> ({caption})</p>\
         <img alt=\"{title}\" style=\"image-rendering:pixelated;width:{w}px\" \
         src=\"data:image/png;base64,{data}\">",
        title = escape(title),
        caption = escape(caption),
        w = (columns * (width + 1) + 1) * zoom,
        data = crate::image_grid::base64(&png)
    )
}

/// A value as a reader wants it: six significant digits without trailing zeros (`5.1`, not
/// the `5.1000000000000005` that undoing a scaling leaves), in scientific notation below 1e-4
/// and from 1e12 on.
pub fn shown_number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let trimmed = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..12).contains(&magnitude) {
        let s = format!("{v:.5e}");
        let (mantissa, exponent) = s.split_once('e').expect("scientific notation");
        return format!("{}e{exponent}", trimmed(mantissa));
    }
    trimmed(&format!("{v:.*}", (5 - magnitude).max(0) as usize))
}

/// How many input columns a mistaken row lists before eliding the rest.
const SHOWN_COLUMNS: usize = 16;

/// The examples a classifier got wrong most confidently, or a regression predicted worst:
/// images as a gallery (each in natural colours, scaled to about 96 screen pixels, with its
/// true and predicted classes, the probability and its file); rows and sequences as a table
/// (where each is, the true and predicted class or value, the probability or error, and a
/// row's inputs).
fn mistakes_figure(m: &Mistakes, split: &str) -> String {
    let (split, noun) = (escape(split), escape(&m.noun));
    if m.wrong == Some(0) {
        return format!(
            "<div style=\"padding:4px 8px\"><p><b>All {total} {split} {noun} were classified \
             right</b></p></div>",
            total = m.total
        );
    }
    let images = m
        .examples
        .iter()
        .any(|e| matches!(e.inputs, ShownInputs::Pixels { .. }));
    let columns = m
        .examples
        .iter()
        .any(|e| matches!(e.inputs, ShownInputs::Columns(_)));
    let place = match (images, columns) {
        (true, _) => "the file",
        (false, true) => "where it is, its inputs",
        (false, false) => "where it is",
    };
    let (shown, total) = (m.examples.len(), m.total);
    let heading = match m.wrong {
        Some(wrong) => format!(
            "<b>The {split} {noun} got wrong most confidently</b> ({shown} of the {wrong} \
             wrong of {total}; true class → predicted, its probability, {place})"
        ),
        None => format!(
            "<b>The {split} {noun} predicted worst</b> ({shown} of {total}, the largest \
             absolute error first; true value → predicted, the error, {place})"
        ),
    };
    // A probability to three decimals; an error in the target's units.
    let score = |v: f64| match m.wrong {
        Some(_) => format!("{v:.3}"),
        None => shown_number(v),
    };
    let mut html = format!("<div style=\"max-width:700px;padding:4px 8px\"><p>{heading}</p>");
    if images {
        html += "<div style=\"display:flex;flex-wrap:wrap;gap:10px\">";
        for e in &m.examples {
            let picture = match &e.inputs {
                ShownInputs::Pixels { shape, pixels } => picture(*shape, pixels, &e.name),
                _ => String::new(),
            };
            let _ = write!(
                html,
                "<figure style=\"margin:0;font-size:12px;text-align:center\">{picture}\
                 <figcaption>{truth} → {predicted} ({p})<br><code>{name}</code></figcaption>\
                 </figure>",
                truth = escape(&e.truth),
                predicted = escape(&e.predicted),
                p = score(e.score),
                name = escape(&e.name)
            );
        }
        return html + "</div></div>";
    }
    html += "<table class=\"mistakes\" style=\"border-collapse:collapse;font-size:12px\">\
             <tr><th>where</th><th>true → predicted</th>";
    html += if m.wrong.is_some() {
        "<th>p</th>"
    } else {
        "<th>|error|</th>"
    };
    html += if columns {
        "<th>inputs</th></tr>"
    } else {
        "</tr>"
    };
    for e in &m.examples {
        let inputs = match &e.inputs {
            ShownInputs::Columns(columns) => {
                let mut listed: Vec<String> = columns
                    .iter()
                    .take(SHOWN_COLUMNS)
                    .map(|(name, value)| format!("{} {}", escape(name), escape(value)))
                    .collect();
                if columns.len() > SHOWN_COLUMNS {
                    listed.push(format!("… {} more", columns.len() - SHOWN_COLUMNS));
                }
                format!("<td>{}</td>", listed.join(" · "))
            }
            _ if columns => "<td><span class=\"empty\">not shown</span></td>".into(),
            _ => String::new(),
        };
        let _ = write!(
            html,
            "<tr><td><code>{name}</code></td><td>{truth} → {predicted}</td><td>{p}</td>\
             {inputs}</tr>",
            name = escape(&e.name),
            truth = escape(&e.truth),
            predicted = escape(&e.predicted),
            p = score(e.score),
        );
    }
    html + "</table></div>"
}

/// An image's pixels (channel-major) as an `<img>`: small images enlarged without smoothing,
/// large ones shrunk, to about 96 screen pixels.
fn picture(shape: [usize; 3], planes: &[u8], name: &str) -> String {
    let [channels, height, width] = shape;
    let shown_width = 96 * width / height.max(width).max(1);
    // Channel planes to interleaved pixels.
    let plane = height * width;
    let interleaved: Vec<u8> = (0..plane)
        .flat_map(|i| (0..channels).map(move |c| planes[c * plane + i]))
        .collect();
    let png = crate::image_grid::png(width, height, channels, &interleaved);
    format!(
        "<img alt=\"{name}\" style=\"image-rendering:pixelated;width:{shown_width}px\" \
         src=\"data:image/png;base64,{data}\"><br>",
        name = escape(name),
        data = crate::image_grid::base64(&png)
    )
}

/// A character model's text: the prompt in gray, then what the model wrote.
fn text_figure(t: &TextSample) -> String {
    format!(
        "<div style=\"max-width:700px;padding:4px 8px\"><p><b>Text written by the model</b> \
         (temperature {temperature}, after the first {n} characters of {source}, in \
         gray)</p><pre style=\"white-space:pre-wrap\"><span style=\"color:#999\">{prompt}\
         </span>{generated}</pre></div>",
        temperature = t.temperature,
        n = t.prompt.chars().count(),
        source = escape(&t.source),
        prompt = escape(&t.prompt),
        generated = escape(&t.generated),
    )
}

fn view(rows: &[Vec<f64>]) -> Vec<&[f64]> {
    rows.iter().map(Vec::as_slice).collect()
}

/// An autoencoder's code statistics, when the run has them.
fn code_table(record: &RunRecord) -> String {
    let Some(c) = &record.code else {
        return String::new();
    };
    format!(
        "<h2>Code</h2><p>Layer {layer} ({desc}), {units} units, on the {split} data: mean \
         activation |h| {mean:.4}; {near:.1}% of the activations are near zero (|h| ≤ {t} · \
         max |h|); {silent} of the {units} units are near zero on every example (silent, not \
         sparse).</p>\n",
        layer = c.layer,
        desc = escape(&c.description),
        units = c.units,
        split = escape(&c.split),
        mean = c.mean_activation,
        near = 100.0 * c.near_zero,
        silent = c.silent_units,
        t = crate::autoencoder::NEAR_ZERO,
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn per_epoch(
    record: &RunRecord,
    f: impl Fn(&crate::trainer::EpochRecord) -> Option<f64>,
) -> Vec<(f64, f64)> {
    record
        .history
        .epochs
        .iter()
        .filter_map(|r| f(r).map(|v| ((r.epoch + 1) as f64, v)))
        .collect()
}

/// The main metric of a run: accuracy for classification, R² for regression.
fn main_metric(record: &RunRecord) -> Option<&'static str> {
    let first = record.history.epochs.first()?;
    ["accuracy", "r2"]
        .into_iter()
        .find(|m| first.train.contains_key(*m))
}

fn metrics_table(record: &RunRecord) -> String {
    let rows = record.final_metrics().rows([
        "train (last epoch)",
        "validation (best epoch)",
        "test (final model)",
    ]);
    let Some((_, first)) = rows.first() else {
        return String::new();
    };
    let names: Vec<&String> = first.keys().collect();
    let mut out = String::from("<table class=\"metrics\"><tr><th></th>");
    for n in &names {
        let _ = write!(out, "<th>{}</th>", escape(n));
    }
    out += "</tr>";
    for (label, m) in rows {
        let _ = write!(out, "<tr><th>{label}</th>");
        for n in &names {
            match m.get(*n) {
                Some(v) => {
                    let _ = write!(out, "<td>{v:.4}</td>");
                }
                None => out += "<td></td>",
            }
        }
        out += "</tr>";
    }
    out + "</table>"
}

type LayerStat = fn(&LayerDiagnostics) -> Option<f64>;

/// The doctor's plots: title, y label, log scale, statistic.
const DOCTOR_PLOTS: &[(&str, &str, bool, LayerStat)] = &[
    (
        "Activation std per layer (doctor)",
        "std of outputs",
        true,
        |l| Some(l.activation_std),
    ),
    (
        "Dead ReLU units per layer (doctor)",
        "fraction dead",
        false,
        |l| l.dead_fraction,
    ),
    (
        "Saturated units per layer (doctor)",
        "fraction saturated",
        false,
        |l| l.saturated_fraction,
    ),
    (
        "Update / weight ratio per step (doctor)",
        "‖ΔW‖ / ‖W‖",
        true,
        |l| l.update_ratio,
    ),
    (
        "Error reaching a sequence's first step (doctor)",
        "‖∂L/∂x₁‖ / maxₜ ‖∂L/∂xₜ‖",
        true,
        |l| l.first_step_gradient,
    ),
];

/// A layer as a chart's legend names it.
fn layer_name(path: &str, l: &LayerDiagnostics) -> String {
    format!("layer {path} ({})", l.kind)
}

/// One series per layer that has the statistic in some epoch.
fn layer_series(record: &RunRecord, stat: LayerStat) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &record.history.epochs {
        let Some(d) = &r.diagnostics else { continue };
        for (path, l) in &d.layers {
            let Some(v) = stat(l) else { continue };
            let name = layer_name(path, l);
            let point = ((r.epoch + 1) as f64, v);
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, points)) => points.push(point),
                None => out.push((name, vec![point])),
            }
        }
    }
    out
}

/// The distribution of each charted layer's outputs (activations, recurrent states) in the
/// first epoch the doctor sampled and in the last: sigmoid units piling up at 0 and 1, tanh's
/// at ±1, dead ReLUs as a spike at 0 (Glorot and Bengio 2010, figures 3-4).
fn histogram_charts(record: &RunRecord) -> Result<Vec<String>> {
    let sampled: Vec<(usize, &crate::doctor::EpochDiagnostics)> = record
        .history
        .epochs
        .iter()
        .filter_map(|r| r.diagnostics.as_ref().map(|d| (r.epoch + 1, d)))
        .filter(|(_, d)| d.layers.iter().any(|(_, l)| l.histogram.is_some()))
        .collect();
    let mut epochs: Vec<_> = sampled.first().into_iter().chain(sampled.last()).collect();
    epochs.dedup_by_key(|(epoch, _)| *epoch);
    epochs
        .into_iter()
        .map(|&(epoch, d)| {
            let charted: Vec<(&String, &LayerDiagnostics, &crate::doctor::Histogram)> = d
                .layers
                .iter()
                .filter_map(|(path, l)| Some((path, l, l.histogram.as_ref()?)))
                .collect();
            // A deep network's curves would bury each other and its legend overflow the chart:
            // the first, the last and evenly spaced layers between, as Glorot and Bengio show.
            let picked = evenly_spaced(charted.len(), MAX_HISTOGRAMS);
            let of = if picked.len() < charted.len() {
                format!(", {} of {} layers", picked.len(), charted.len())
            } else {
                String::new()
            };
            let series: Vec<_> = picked
                .into_iter()
                .map(|i| {
                    let (path, l, h) = charted[i];
                    (layer_name(path, l), h.steps())
                })
                .collect();
            xy_chart(
                &format!("Output distribution per layer, epoch {epoch}{of} (doctor)"),
                "output value",
                "fraction of outputs",
                &series,
                false,
            )
        })
        .collect()
}

/// Layers whose output distributions one chart shows, at most.
const MAX_HISTOGRAMS: usize = 6;

/// `at_most` indices of `0..count`, the first and the last among them, evenly spaced (all of
/// them when there are no more than `at_most`).
fn evenly_spaced(count: usize, at_most: usize) -> Vec<usize> {
    if count <= at_most {
        return (0..count).collect();
    }
    if at_most < 2 {
        return (0..at_most).collect();
    }
    (0..at_most)
        .map(|i| (i * (count - 1) + (at_most - 1) / 2) / (at_most - 1))
        .collect()
}

/// The doctor's findings over the run, or its clean bill.
fn diagnosis(record: &RunRecord) -> String {
    let epochs: Vec<&crate::doctor::EpochDiagnostics> = record
        .history
        .epochs
        .iter()
        .filter_map(|r| r.diagnostics.as_ref())
        .collect();
    if epochs.is_empty() {
        return String::new();
    }
    let findings: Vec<&crate::doctor::Finding> =
        epochs.iter().flat_map(|d| d.findings.iter()).collect();
    let samples: usize = epochs.iter().map(|d| d.samples).sum();
    let mut out = String::from("<h2>Diagnosis</h2>\n");
    if findings.is_empty() {
        // A GAN's doctor reads the epoch records only: no sampled steps to count.
        let sampled = if samples > 0 {
            format!(" in {samples} sampled steps")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<p class=\"clean\">The convergence doctor found no problems{sampled} over {} \
             epochs.</p>",
            epochs.len()
        );
        return out;
    }
    out += "<div class=\"findings\">";
    for f in findings {
        let _ = write!(
            out,
            "<div class=\"finding\"><p><b>{}</b></p><p>Why: {}</p><p>Remedy: {}</p>",
            escape(&f.headline()),
            escape(&f.cause),
            escape(&f.remedy)
        );
        if !f.fix.is_empty() {
            let _ = write!(
                out,
                "<p>Config changes: <code>{}</code></p>",
                escape(
                    &f.fix
                        .iter()
                        .map(|c| format!("--set '{c}'"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            );
        }
        out += "</div>";
    }
    out + "</div>\n"
}

/// Loss and the main metric per epoch, train and validation.
fn supervised_charts(record: &RunRecord) -> Result<Vec<String>> {
    let mut figures = Vec::new();
    let loss_series = vec![
        (
            "train".to_string(),
            per_epoch(record, |r| r.train.get("loss").copied()),
        ),
        (
            "validation".to_string(),
            per_epoch(record, |r| {
                r.valid.as_ref().and_then(|v| v.get("loss").copied())
            }),
        ),
    ];
    figures.push(line_chart("Loss", "loss", &loss_series, false)?);
    if let Some(metric) = main_metric(record) {
        let series = vec![
            (
                "train".to_string(),
                per_epoch(record, |r| r.train.get(metric).copied()),
            ),
            (
                "validation".to_string(),
                per_epoch(record, |r| {
                    r.valid.as_ref().and_then(|v| v.get(metric).copied())
                }),
            ),
        ];
        figures.push(line_chart(metric, metric, &series, false)?);
    }
    Ok(figures)
}

/// Whether the record is a GAN's (its epochs record the discriminator's loss).
fn is_gan(record: &RunRecord) -> bool {
    record
        .history
        .epochs
        .first()
        .is_some_and(|r| r.train.contains_key("d_loss"))
}

/// A GAN's losses, the discriminator's outputs and the sample measures per epoch.
fn gan_charts(record: &RunRecord) -> Result<Vec<String>> {
    let series = |keys: &[(&str, &str)], samples: bool| -> Vec<(String, Vec<(f64, f64)>)> {
        keys.iter()
            .map(|&(key, label)| {
                let points = per_epoch(record, |r| {
                    let m = if samples {
                        r.samples.as_ref()?
                    } else {
                        &r.train
                    };
                    m.get(key).copied()
                });
                (label.to_string(), points)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect()
    };
    let mut figures = vec![
        line_chart(
            "Losses",
            "loss",
            &series(
                &[("d_loss", "discriminator"), ("g_loss", "generator")],
                false,
            ),
            false,
        )?,
        line_chart(
            "Discriminator's mean output (0.5: it cannot tell)",
            "D(·)",
            &series(
                &[("d_real", "D(x), real"), ("d_fake", "D(G(z)), generated")],
                false,
            ),
            false,
        )?,
    ];
    let measures = series(
        &[
            ("diversity", "diversity"),
            ("nearest_distance", "nearest distance"),
            ("class_entropy", "class entropy"),
        ],
        true,
    );
    if !measures.is_empty() {
        figures.push(line_chart(
            "Samples against real data (1: like held-out real data)",
            "ratio",
            &measures,
            false,
        )?);
    }
    Ok(figures)
}

/// A GAN's final sample measures, beside held-out real data measured the same way.
fn gan_table(record: &RunRecord) -> String {
    let Some(g) = &record.gan else {
        return String::new();
    };
    let mut out = String::from(
        "<h2>Samples</h2><table class=\"metrics\"><tr><th></th><th>diversity</th>\
         <th>nearest distance</th><th>class entropy</th><th>classes covered</th>\
         <th>top class share</th></tr>",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
    let mut row = |label: &str, q: &crate::gan::quality::SampleQuality| {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(label),
            q.diversity,
            q.nearest_distance,
            opt(q.class_entropy),
            match (q.classes_covered, q.classes) {
                (Some(c), Some(k)) => format!("{c} / {k}"),
                _ => String::new(),
            },
            opt(q.top_class_share),
        );
    };
    row(&format!("{} samples", g.samples.samples), &g.samples);
    if let (Some(real), Some(split)) = (&g.real, &g.split) {
        row(&format!("real {split} data"), real);
    }
    out += "</table><p>Distances are in the preprocessed feature space. Diversity: mean \
            pairwise distance over that of held-out real data (near 0: mode collapse). Nearest \
            distance: mean distance to the nearest training example over the same for \
            held-out real data (far above 1: unlike the data; far below 1: copies of training \
            examples). Classes: each sample takes its nearest training example's class; the \
            entropy of that histogram over ln K is 1 for an even spread.</p>\n";
    out
}

/// Renders the report as one HTML document.
pub fn render(input: &ReportInput<'_>) -> Result<String> {
    let record = input.record;
    let h = &record.history;
    let mut figures = Vec::new();
    if is_gan(record) {
        figures.extend(gan_charts(record)?);
    } else {
        figures.extend(supervised_charts(record)?);
    }
    figures.push(line_chart(
        "Learning rate",
        "learning rate",
        &[(
            "lr".to_string(),
            per_epoch(record, |r| Some(r.learning_rate)),
        )],
        true,
    )?);
    let layers: Vec<String> = h
        .epochs
        .first()
        .map(|r| r.layer_grad_norms.keys().cloned().collect())
        .unwrap_or_default();
    let grad_series: Vec<(String, Vec<(f64, f64)>)> = layers
        .iter()
        .map(|l| {
            (
                format!("layer {l}"),
                per_epoch(record, |r| r.layer_grad_norms.get(l).copied()),
            )
        })
        .collect();
    figures.push(line_chart(
        "Gradient norm per layer (mean over the epoch's steps)",
        "‖∇‖₂",
        &grad_series,
        true,
    )?);
    // The doctor's per-layer statistics over time.
    for (title, y, log, stat) in DOCTOR_PLOTS {
        let series = layer_series(record, *stat);
        if !series.is_empty() {
            figures.push(line_chart(title, y, &series, *log)?);
        }
    }
    figures.extend(histogram_charts(record)?);
    match &input.evaluation {
        Some(Evaluation::Confusion {
            split,
            classes,
            matrix,
            mistakes,
        }) => {
            figures.push(confusion_chart(classes, matrix, split)?);
            if let Some(m) = mistakes {
                figures.push(mistakes_figure(m, split));
            }
        }
        Some(Evaluation::Regression {
            split,
            pairs,
            worst,
        }) => {
            figures.push(scatter_chart(pairs, split)?);
            if let Some(m) = worst {
                figures.push(mistakes_figure(m, split));
            }
        }
        Some(Evaluation::Reconstruction(r)) => figures.push(reconstruction_figure(r)),
        Some(Evaluation::Samples(s)) => figures.push(samples_figure(s)),
        Some(Evaluation::Text(t)) => figures.push(text_figure(t)),
        None => {}
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — nabla report</title>\n\
         <style>body{{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222}}\
         .figures{{display:flex;flex-wrap:wrap;gap:12px}} .figures>div{{border:1px solid #ddd}}\
         table.metrics{{border-collapse:collapse}} table.metrics td,table.metrics th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         table.mistakes td,table.mistakes th{{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}}\
         pre{{background:#f6f6f6;padding:8px;overflow:auto}} .empty{{color:#888}}\
         .finding{{border-left:4px solid #d62728;padding:2px 10px;margin:8px 0;background:#fff6f6}} .clean{{color:#2ca02c}}</style></head><body>\n\
         <h1>{title}</h1>\n",
        title = escape(input.title)
    );
    let stopped = if h.stopped_early {
        ", stopped early"
    } else {
        ""
    };
    let best = h
        .best_epoch
        .map_or(String::new(), |b| format!(", best epoch {}", b + 1));
    let state = if record.finished {
        "finished"
    } else {
        "in progress"
    };
    let _ = write!(
        html,
        "<p>{} epochs{best}{stopped} ({state}); {:.1} s of training.</p>\n{}\n{}{}<h2>Training</h2>\n<div class=\"figures\">",
        h.epochs.len(),
        record.train_seconds,
        metrics_table(record),
        code_table(record) + &class_error_table(record) + &gan_table(record),
        diagnosis(record)
    );
    for f in figures {
        let _ = writeln!(html, "<div class=\"figure\">{f}</div>");
    }
    let _ = write!(
        html,
        "</div>\n<h2>Config</h2>\n<pre>{}</pre>\n<p style=\"color:#888\">Made by nabla {}.</p></body></html>\n",
        escape(input.config_toml),
        env!("CARGO_PKG_VERSION")
    );
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::{evenly_spaced, shown_number};

    #[test]
    fn a_deep_networks_histograms_are_thinned_to_evenly_spaced_layers() {
        assert_eq!(evenly_spaced(4, 6), [0, 1, 2, 3]);
        assert_eq!(evenly_spaced(19, 6), [0, 4, 7, 11, 14, 18]);
        assert_eq!(evenly_spaced(7, 6), [0, 1, 2, 4, 5, 6]);
        for count in 7..100 {
            let shown = evenly_spaced(count, 6);
            assert_eq!((shown.len(), shown[0], shown[5]), (6, 0, count - 1));
            assert!(shown.windows(2).all(|w| w[0] < w[1]), "{shown:?}");
        }
    }

    #[test]
    fn numbers_are_shown_to_six_significant_digits() {
        for (v, shown) in [
            (5.1000000000000005, "5.1"),
            (-0.0, "0"),
            (3.0, "3"),
            (-2.75, "-2.75"),
            (123456.7, "123457"),
            (1234567.0, "1234567"),
            (0.000123456789, "0.000123457"),
            (0.00001234, "1.234e-5"),
            (6.02e23, "6.02e23"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(shown_number(v), shown, "{v}");
        }
    }
}
