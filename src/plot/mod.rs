//! Charts from reports and sweeps, drawn with plotters into memory (PNG or SVG) so that
//! the caller writes the whole file at once with [`crate::io::write_atomic`].
//!
//! Text is drawn with the bundled DejaVu Sans (registered once as "sans-serif"), so no
//! system font is needed. Each protocol has one colour in every chart ([`colour`]).

use crate::mapper::sweep::{Sweep, SweepPoint};
use crate::model::report::Report;
use crate::protocol::Protocol;
use crate::workload::CostClass;
use plotters::coord::Shift;
use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlotError {
    #[error("cannot plot to {path}: unsupported image extension (use .png or .svg)")]
    Extension { path: String },
    #[error(
        "image size '{0}': expected WIDTHxHEIGHT in pixels, each in 100..=8000, for example 720x450"
    )]
    Size(String),
    #[error("nothing to plot: {0}")]
    Empty(String),
    #[error("the bundled font could not be loaded")]
    Font,
    #[error("drawing failed: {0}")]
    Draw(String),
}

/// The image formats, chosen by the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    pub fn from_path(path: &Path) -> Result<ImageFormat, PlotError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            _ => Err(PlotError::Extension {
                path: path.display().to_string(),
            }),
        }
    }
}

/// Image size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub w: u32,
    pub h: u32,
}

impl Size {
    /// A one-column figure of a two-column paper at about 200 dpi.
    pub const COLUMN: Size = Size { w: 720, h: 450 };

    /// The default size of a bar chart with `rows` bars: one column wide, tall enough for
    /// a readable label on every bar.
    pub fn for_rows(rows: usize) -> Size {
        let h = (120 + 16 * rows as u32).clamp(Size::COLUMN.h, 8000);
        Size { h, ..Size::COLUMN }
    }

    /// Parses `720x450`.
    pub fn parse(s: &str) -> Result<Size, PlotError> {
        let err = || PlotError::Size(s.to_string());
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(err)?;
        let w: u32 = w.trim().parse().map_err(|_| err())?;
        let h: u32 = h.trim().parse().map_err(|_| err())?;
        if !(100..=8000).contains(&w) || !(100..=8000).contains(&h) {
            return Err(err());
        }
        Ok(Size { w, h })
    }
}

/// The colour of a protocol, the same in every chart (Okabe-Ito palette, readable with
/// colour-vision deficiencies).
pub fn colour(p: Protocol) -> RGBColor {
    match p {
        Protocol::Cheetah => RGBColor(0, 114, 178),
        Protocol::Cryptflow2 => RGBColor(110, 110, 110),
        Protocol::HequantNaive => RGBColor(0, 158, 115),
        Protocol::HequantPacked => RGBColor(204, 121, 167),
        Protocol::Hequant => RGBColor(213, 94, 0),
    }
}

/// Colours of the three parts of the per-layer stacked bars.
const C2S: RGBColor = RGBColor(86, 180, 233);
const S2C: RGBColor = RGBColor(0, 114, 178);
const NONLIN: RGBColor = RGBColor(230, 159, 0);

/// A chart and the data it shows.
pub enum Chart<'a> {
    /// Total communication against the uniform bit width, one line per protocol.
    CommVsBits(&'a Sweep),
    /// Latency against communication for every point of a sweep, the Pareto front joined.
    Pareto(&'a Sweep),
    /// Per linear layer, stacked: client->server HE, server->client HE, non-linear.
    Layers(&'a Report),
    /// Per protocol, stacked: client->server HE, server->client HE, non-linear.
    Compare(&'a [Report]),
    /// Named series of values against the bit width (e.g. linear bytes per image per
    /// slot scheme, [`Lines`]).
    Lines(&'a Lines),
}

/// Named series of (bit width, bytes) points for [`Chart::Lines`].
#[derive(Debug, Clone, PartialEq)]
pub struct Lines {
    pub caption: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<(String, Vec<(u32, u64)>)>,
}

fn font() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Draws a chart into the bytes of an image file.
pub fn render(chart: &Chart, format: ImageFormat, size: Size) -> Result<Vec<u8>, PlotError> {
    font()?;
    match format {
        ImageFormat::Svg => {
            let mut s = String::new();
            {
                let root = SVGBackend::with_string(&mut s, (size.w, size.h)).into_drawing_area();
                draw(&root, chart)?;
                root.present().map_err(de)?;
            }
            Ok(s.into_bytes())
        }
        ImageFormat::Png => {
            let mut buf = vec![0u8; size.w as usize * size.h as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut buf, (size.w, size.h)).into_drawing_area();
                draw(&root, chart)?;
                root.present().map_err(de)?;
            }
            let mut out = Vec::new();
            {
                let mut enc = png::Encoder::new(&mut out, size.w, size.h);
                enc.set_color(png::ColorType::Rgb);
                enc.set_depth(png::BitDepth::Eight);
                let mut w = enc
                    .write_header()
                    .map_err(|e| PlotError::Draw(e.to_string()))?;
                w.write_image_data(&buf)
                    .map_err(|e| PlotError::Draw(e.to_string()))?;
            }
            Ok(out)
        }
    }
}

fn de<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(de)?;
    match chart {
        Chart::CommVsBits(s) => comm_vs_bits(root, s),
        Chart::Pareto(s) => pareto(root, s),
        Chart::Layers(r) => layers(root, r),
        Chart::Compare(rs) => compare(root, rs),
        Chart::Lines(l) => lines(root, l),
    }
}

/// Colour-blind-safe colours (Okabe-Ito) for the series of a [`Lines`] chart, in order.
const SERIES: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(213, 94, 0),
    RGBColor(0, 0, 0),
];

fn lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, l: &Lines) -> Result<(), PlotError> {
    let all: Vec<&(u32, u64)> = l.series.iter().flat_map(|s| &s.1).collect();
    if all.is_empty() {
        return Err(PlotError::Empty("the chart has no points".into()));
    }
    let (xlo, xhi) = all
        .iter()
        .fold((u32::MAX, 0), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let hi = all.iter().map(|p| p.1 as f64 / MB).fold(0f64, f64::max);
    let band = (0.08 + 0.055 * l.series.len() as f64).min(0.45);
    let top = hi / (1.0 - band);
    let mut c = ChartBuilder::on(root)
        .caption(&l.caption, text(18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((xlo as f64 - 0.5)..(xhi as f64 + 0.5), 0f64..top)
        .map_err(de)?;
    c.configure_mesh()
        .x_desc(l.x_desc.as_str())
        .y_desc(l.y_desc.as_str())
        .x_labels((xhi - xlo + 1).min(16) as usize)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| si(*v))
        .label_style(text(13))
        .axis_desc_style(text(14))
        .draw()
        .map_err(de)?;
    for (i, (name, pts)) in l.series.iter().enumerate() {
        let col = SERIES[i % SERIES.len()];
        let pts: Vec<(f64, f64)> = pts
            .iter()
            .map(|&(b, v)| (b as f64, v as f64 / MB))
            .collect();
        // Series that coincide stay visible: earlier ones are drawn wider, so that a
        // later line on top of them leaves their edges showing.
        let n = l.series.len();
        let w = (n - i) as u32 + 2;
        let line = col.stroke_width(w);
        if i % 2 == 0 {
            c.draw_series(LineSeries::new(pts.clone(), line))
                .map_err(de)?;
        } else {
            c.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, line))
                .map_err(de)?;
        }
        let r = w as i32 + 1;
        c.draw_series(pts.iter().map(|&q| Circle::new(q, r, col.filled())))
            .map_err(de)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (22, 0)], line)
                    + Circle::new((11, 0), r.min(5), col.filled())
            });
    }
    legend(&mut c, SeriesLabelPosition::UpperRight)
}

fn text(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

const MB: f64 = 1e6;

/// The 1-2-5 step of a log axis at or below (`down`), or at or above, `v`.
fn step125(v: f64, down: bool) -> f64 {
    let base = 10f64.powf(v.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0];
    if down {
        steps
            .iter()
            .rev()
            .map(|m| m * base)
            .find(|&x| x <= v * (1.0 + 1e-12))
            .unwrap_or(base)
    } else {
        steps
            .iter()
            .map(|m| m * base)
            .find(|&x| x >= v * (1.0 - 1e-12))
            .unwrap_or(10.0 * base)
    }
}

/// Axis bounds for values on a log axis: 1-2-5 steps around the data, the top raised by
/// `headroom` (a fraction of the span, in log terms) to leave room for a legend.
fn log_bounds(lo: f64, hi: f64, headroom: f64) -> (f64, f64) {
    let top = hi * (hi / lo).powf(headroom);
    (step125(lo, true), step125(top, false))
}

/// A log axis over `lo..hi` with bold lines and labels at 1, 2 and 5 times a power of ten
/// and light lines at the other whole multiples.
fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let mut bold = Vec::new();
    let mut light = Vec::new();
    let mut base = 10f64.powf(lo.log10().floor());
    while base <= hi * 1.000001 {
        for m in 1..10 {
            let v = base * m as f64;
            if v >= lo * 0.999999 && v <= hi * 1.000001 {
                if [1, 2, 5].contains(&m) {
                    bold.push(v);
                } else {
                    light.push(v);
                }
            }
        }
        base *= 10.0;
    }
    (lo..hi)
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

/// Whether values span at least a decade (then a log axis reads better).
fn spans_decades(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo >= 10.0
}

fn protocols_of(s: &Sweep) -> Vec<Protocol> {
    let mut v: Vec<Protocol> = Vec::new();
    for p in &s.points {
        if !v.contains(&p.protocol) {
            v.push(p.protocol);
        }
    }
    v
}

fn si(v: f64) -> String {
    if v >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

fn comm_vs_bits<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), PlotError> {
    if s.points.is_empty() {
        return Err(PlotError::Empty("the sweep has no points".into()));
    }
    let mbs: Vec<f64> = s.points.iter().map(|p| p.bytes as f64 / MB).collect();
    let (lo, hi) = mbs
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let x = (s.bits.lo as f64 - 0.5)..(s.bits.hi as f64 + 0.5);
    let caption = format!("{}: communication vs. bit width", s.network);
    let series = |p: Protocol| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .filter(|q| q.protocol == p)
            .map(|q| (q.bits as f64, q.bytes as f64 / MB))
            .collect()
    };
    let x_desc = if s.bits_all {
        "bit width b (weights and activations, wbab; bits)"
    } else {
        "bit width b (wbab; first and last layer w8a8; bits)"
    };
    let y_desc = "total communication (MB, both directions)";
    let bits_fmt = |v: &f64| format!("{v:.0}");
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, text(18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64);
    // The legend takes the top of the plot: keep that band free of lines.
    let band = (0.08 + 0.055 * protocols_of(s).len() as f64).min(0.45);
    if spans_decades(lo, hi) {
        let (a, b) = log_bounds(lo, hi, band / (1.0 - band));
        let mut c = builder.build_cartesian_2d(x, log_axis(a, b)).map_err(de)?;
        c.configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels((s.bits.hi - s.bits.lo + 1).min(16) as usize)
            .x_label_formatter(&bits_fmt)
            .y_label_formatter(&|v| si(*v))
            .label_style(text(13))
            .axis_desc_style(text(14))
            .draw()
            .map_err(de)?;
        for p in protocols_of(s) {
            protocol_line(&mut c, p, series(p))?;
        }
        legend(&mut c, SeriesLabelPosition::UpperLeft)
    } else {
        let b = hi / (1.0 - band);
        let mut c = builder.build_cartesian_2d(x, 0f64..b).map_err(de)?;
        c.configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels((s.bits.hi - s.bits.lo + 1).min(16) as usize)
            .x_label_formatter(&bits_fmt)
            .y_label_formatter(&|v| si(*v))
            .label_style(text(13))
            .axis_desc_style(text(14))
            .draw()
            .map_err(de)?;
        for p in protocols_of(s) {
            protocol_line(&mut c, p, series(p))?;
        }
        legend(&mut c, SeriesLabelPosition::UpperLeft)
    }
}

/// One protocol's line: its colour, and a marker and dash of its own so that protocols
/// with equal values (hequant-naive and hequant-packed often coincide) stay visible.
fn protocol_line<'a, DB, X, Y>(
    c: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    p: Protocol,
    pts: Vec<(f64, f64)>,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let col = colour(p);
    let line = col.stroke_width(2);
    let dashed = p == Protocol::HequantPacked;
    if dashed {
        c.draw_series(DashedLineSeries::new(pts.clone(), 8, 6, line))
            .map_err(de)?;
    } else {
        let wide = if p == Protocol::HequantNaive { 4 } else { 2 };
        c.draw_series(LineSeries::new(pts.clone(), col.stroke_width(wide)))
            .map_err(de)?;
    }
    let st = col.filled();
    let gap = if dashed { 13 } else { 9 };
    // One arm per marker shape: each element type is concrete.
    macro_rules! with_marker {
        ($at:ident => $shape:expr) => {{
            c.draw_series(pts.iter().map(|&$at| $shape))
                .map_err(de)?
                .label(p.name())
                .legend(move |(x, y)| {
                    let $at = (11, 0);
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (9, 0)], line)
                        + PathElement::new(vec![(gap, 0), (22, 0)], line)
                        + $shape
                });
        }};
    }
    match marker(p) {
        Marker::Circle => with_marker!(q => Circle::new(q, 4, st)),
        Marker::Triangle => with_marker!(q => TriangleMarker::new(q, 6, st)),
        Marker::BoldCross => with_marker!(q => Cross::new(q, 5, col.stroke_width(3))),
        Marker::ThinCross => with_marker!(q => Cross::new(q, 4, col.stroke_width(2))),
    }
    Ok(())
}

/// The marker of a protocol in line charts.
#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    BoldCross,
    ThinCross,
}

fn marker(p: Protocol) -> Marker {
    match p {
        Protocol::Cheetah => Marker::BoldCross,
        Protocol::HequantNaive => Marker::Triangle,
        Protocol::Cryptflow2 => Marker::ThinCross,
        _ => Marker::Circle,
    }
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    c: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> Result<(), PlotError> {
    c.configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(text(13))
        .margin(8)
        .draw()
        .map_err(de)
}

fn pareto<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Sweep) -> Result<(), PlotError> {
    if s.points.is_empty() {
        return Err(PlotError::Empty("the sweep has no points".into()));
    }
    let mm = |v: &mut dyn Iterator<Item = f64>| {
        v.fold((f64::MAX, 0f64), |(a, b), x| (a.min(x), b.max(x)))
    };
    let (xlo, xhi) = mm(&mut s.points.iter().map(|p| p.bytes as f64 / MB));
    let (ylo, yhi) = mm(&mut s.points.iter().map(|p| p.latency_s));
    let pad = (yhi - ylo).max(yhi * 0.02) * 0.08;
    let y = (ylo - pad).max(0.0)..(yhi + pad);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(
            format!(
                "{}: Pareto front, bits {}, {} link",
                s.network, s.bits, s.link
            ),
            text(16),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60);
    if spans_decades(xlo, xhi) {
        let (a, b) = log_bounds(xlo, xhi, 0.0);
        let mut c = builder.build_cartesian_2d(log_axis(a, b), y).map_err(de)?;
        pareto_body(
            &mut c,
            s,
            "total communication (MB, both directions, log scale)",
            &|v| si(*v),
        )
    } else {
        let pad = (xhi - xlo).max(xhi * 0.02) * 0.06;
        let mut c = builder
            .build_cartesian_2d((xlo - pad).max(0.0)..(xhi + pad), y)
            .map_err(de)?;
        pareto_body(
            &mut c,
            s,
            "total communication (MB, both directions)",
            &|v| si(*v),
        )
    }
}

fn pareto_body<'a, DB, X>(
    c: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    s: &Sweep,
    x_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(format!("latency on {} (s)", s.link))
        .x_label_formatter(x_fmt)
        .y_label_formatter(&|v| si(*v))
        .label_style(text(13))
        .axis_desc_style(text(14))
        .draw()
        .map_err(de)?;
    for p in protocols_of(s) {
        let col = colour(p);
        let pts: Vec<&SweepPoint> = s.points.iter().filter(|q| q.protocol == p).collect();
        // hequant-naive often equals hequant-packed: a wider ring keeps it visible.
        let r = if p == Protocol::HequantNaive { 7 } else { 4 };
        c.draw_series(pts.iter().map(|q| {
            let at = (q.bytes as f64 / MB, q.latency_s);
            if q.pareto {
                Circle::new(at, r + 1, col.filled())
            } else {
                Circle::new(at, r, col.stroke_width(2))
            }
        }))
        .map_err(de)?
        .label(p.name())
        .legend(move |(x, y)| Circle::new((x + 9, y), r.min(6), col.stroke_width(2)));
    }
    // The front, from cheap to expensive, joined by a line and labelled with its widths.
    let mut front: Vec<&SweepPoint> = s.front().collect();
    front.sort_by(|a, b| a.bytes.cmp(&b.bytes).then(a.bits.cmp(&b.bits)));
    let grey = BLACK.mix(0.5).stroke_width(1);
    c.draw_series(LineSeries::new(
        front.iter().map(|q| (q.bytes as f64 / MB, q.latency_s)),
        grey,
    ))
    .map_err(de)?
    .label("Pareto front (filled points)")
    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
    // Label front points at least a label's width apart on the image; the last (widest)
    // point always gets its label, replacing a too-close neighbour's.
    let at = |q: &SweepPoint| (q.bytes as f64 / MB, q.latency_s);
    let mut labelled: Vec<usize> = Vec::new();
    for (i, q) in front.iter().enumerate() {
        let (x, y) = c.backend_coord(&at(q));
        let clear = |j: &usize| {
            let (px, py) = c.backend_coord(&at(front[*j]));
            (x - px).abs() >= 52 || (y - py).abs() >= 18
        };
        if labelled.last().is_none_or(clear) {
            labelled.push(i);
        } else if i + 1 == front.len() {
            labelled.pop();
            labelled.push(i);
        }
    }
    c.draw_series(labelled.iter().map(|&i| {
        let q = front[i];
        EmptyElement::at(at(q)) + Text::new(format!("w{}a{}", q.bits, q.bits), (-8, -22), text(12))
    }))
    .map_err(de)?;
    legend(c, SeriesLabelPosition::LowerRight)
}

/// A report's bit-width description, shortened for a caption.
fn short_bits(b: &str) -> String {
    b.replace(" (first and last layer w8a8)", ", ends w8a8")
}

/// A report's costs split for the stacked bars: (client->server HE, server->client HE,
/// non-linear), in bytes.
pub fn split(l: &crate::model::report::LayerReport) -> (u64, u64, u64) {
    let nl = l.bytes_nonlinear;
    (
        l.bytes_client_to_server.saturating_sub(nl / 2),
        l.bytes_server_to_client.saturating_sub(nl - nl / 2),
        nl,
    )
}

/// One bar per linear layer: its HE bytes each way, and the non-linear bytes of the layers
/// that feed it since the previous linear layer (its input's ReLU, pooling,
/// requantization). Non-linear layers after the last linear layer join the last bar.
pub fn layer_bars(r: &Report) -> Vec<(String, [u64; 3])> {
    let mut bars: Vec<(String, [u64; 3])> = Vec::new();
    let mut pending = [0u64; 3];
    for l in &r.layers {
        let (a, b, c) = split(l);
        pending[0] += a;
        pending[1] += b;
        pending[2] += c;
        if l.class == CostClass::Linear {
            bars.push((l.name.clone(), pending));
            pending = [0; 3];
        }
    }
    if let Some(last) = bars.last_mut() {
        for (total, extra) in last.1.iter_mut().zip(pending) {
            *total += extra;
        }
    }
    bars
}

const PARTS: [(&str, RGBColor); 3] = [
    ("HE client -> server", C2S),
    ("HE server -> client", S2C),
    ("non-linear (OT), both ways", NONLIN),
];

/// Horizontal stacked bars, the first bar at the top: names stay level and readable
/// however many bars there are (every k-th name is shown when rows get too thin).
fn stacked<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: String,
    y_desc: &str,
    bars: &[(String, [u64; 3])],
    outline: &[Option<RGBColor>],
) -> Result<(), PlotError> {
    if bars.is_empty() {
        return Err(PlotError::Empty("no linear layer".into()));
    }
    let n = bars.len();
    let width = |b: &[(String, [u64; 3])]| {
        b.iter()
            .map(|(_, v)| v.iter().sum::<u64>() as f64 / MB)
            .fold(0f64, f64::max)
    };
    // The legend sits in the lower right, over the last quarter of the rows and the right
    // 40 % of the width: widen the axis until those bars stay clear of it.
    let right = (width(bars) * 1.02).max(width(&bars[n - n.div_ceil(4)..]) / 0.55);
    let longest = bars
        .iter()
        .map(|(s, _)| s.chars().count())
        .max()
        .unwrap_or(4);
    let (_, h) = root.dim_in_pixel();
    let label_px = if n > 8 { 12 } else { 13 };
    let plot_h = h.saturating_sub(110).max(50) as usize;
    let every = (n * (label_px as usize + 3)).div_ceil(plot_h).max(1);
    let mut c = ChartBuilder::on(root)
        .caption(caption, text(16))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(24 + (label_px * 6 / 10 + 1) * longest as u32)
        .build_cartesian_2d(0f64..right.max(1e-6), (n as f64 - 0.5)..-0.5f64)
        .map_err(de)?;
    let names: Vec<String> = bars.iter().map(|(s, _)| s.clone()).collect();
    let fmt = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize).is_multiple_of(every) {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    c.configure_mesh()
        .disable_y_mesh()
        .y_desc(y_desc)
        .x_desc("communication (MB)")
        .y_labels(n + 1)
        .y_label_formatter(&fmt)
        .y_label_style(text(label_px))
        .x_label_style(text(13))
        .x_label_formatter(&|v| si(*v))
        .axis_desc_style(text(14))
        .draw()
        .map_err(de)?;
    let half = if n > 30 { 0.45 } else { 0.38 };
    for (k, (label, col)) in PARTS.iter().enumerate() {
        let col = *col;
        c.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let base: u64 = v[..k].iter().sum();
            let y = i as f64;
            Rectangle::new(
                [
                    (base as f64 / MB, y - half),
                    ((base + v[k]) as f64 / MB, y + half),
                ],
                col.filled(),
            )
        }))
        .map_err(de)?
        .label(*label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
    }
    c.draw_series(bars.iter().enumerate().filter_map(|(i, (_, v))| {
        let col = outline.get(i).copied().flatten()?;
        let y = i as f64;
        let w = v.iter().sum::<u64>() as f64 / MB;
        Some(Rectangle::new(
            [(0.0, y - 0.42), (w, y + 0.42)],
            col.stroke_width(3),
        ))
    }))
    .map_err(de)?;
    legend(&mut c, SeriesLabelPosition::LowerRight)
}

fn layers<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), PlotError> {
    stacked(
        root,
        format!("{} | {} | {}", r.network, r.protocol, short_bits(&r.bits)),
        "linear layer (with the non-linear layers feeding it)",
        &layer_bars(r),
        &[],
    )
}

fn compare<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rs: &[Report],
) -> Result<(), PlotError> {
    let Some(first) = rs.first() else {
        return Err(PlotError::Empty("no protocol".into()));
    };
    // The bit widths of the quantized protocols (the others run fixed point).
    let bits = rs
        .iter()
        .find(|r| Protocol::parse(&r.protocol).is_ok_and(Protocol::is_quantized))
        .unwrap_or(first)
        .bits
        .clone();
    let bars: Vec<(String, [u64; 3])> = rs
        .iter()
        .map(|r| {
            let mut v = [0u64; 3];
            for l in &r.layers {
                let (a, b, c) = split(l);
                v[0] += a;
                v[1] += b;
                v[2] += c;
            }
            v[0] += r.total.bytes_setup;
            (r.protocol.clone(), v)
        })
        .collect();
    let outline: Vec<Option<RGBColor>> = rs
        .iter()
        .map(|r| Protocol::parse(&r.protocol).ok().map(colour))
        .collect();
    stacked(
        root,
        format!(
            "{}: total communication | {}",
            first.network,
            short_bits(&bits)
        ),
        "protocol (outlined in its colour)",
        &bars,
        &outline,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_by_extension() {
        assert_eq!(
            ImageFormat::from_path(Path::new("a/b.PNG")),
            Ok(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::from_path(Path::new("b.svg")),
            Ok(ImageFormat::Svg)
        );
        for bad in ["b.jpg", "b", "b.svg.txt"] {
            assert!(ImageFormat::from_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("720x450"), Ok(Size { w: 720, h: 450 }));
        for bad in ["720", "0x10", "99x500", "720x9000", "axb", ""] {
            assert!(Size::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_axes_step_by_one_two_five() {
        assert_eq!(step125(35.0, true), 20.0);
        assert_eq!(step125(35.0, false), 50.0);
        assert_eq!(step125(710.0, false), 1000.0);
        assert_eq!(step125(100.0, true), 100.0);
        assert_eq!(log_bounds(35.0, 710.0, 0.0), (20.0, 1000.0));
        // Headroom 1.0 doubles the span in log terms: 710 * (710 / 35) = 14403 -> 20000.
        assert_eq!(log_bounds(35.0, 710.0, 1.0), (20.0, 20000.0));
    }

    #[test]
    fn layer_plots_grow_with_the_network() {
        assert_eq!(Size::for_rows(10), Size::COLUMN);
        let tall = Size::for_rows(54);
        assert_eq!(tall.w, Size::COLUMN.w);
        assert!(tall.h >= 54 * 16);
    }

    #[test]
    fn every_protocol_has_its_own_colour() {
        let c: Vec<RGBColor> = Protocol::ALL.iter().map(|&p| colour(p)).collect();
        for i in 0..c.len() {
            for j in i + 1..c.len() {
                assert_ne!(c[i], c[j]);
            }
        }
    }
}
