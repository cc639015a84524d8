//! The soak's PNG: RSS (top) and open fds (bottom) of every daemon over time, one colour per
//! node, one line per daemon run (a kill -9 ends a line, the restart begins the next), quiet
//! periods shaded grey.
//!
//! plotters draws into an RGB buffer (no image crate) and `png` encodes it. Text needs a
//! font file: the first system TrueType font found is used for titles, axes and the
//! legend; a machine without one (a bare CI image) gets the same plot without text, and
//! the printed report names the colours.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

use super::report::{mib, Report};
use super::work::Sample;

const COLORS: [(&str, RGBColor); 12] = [
    ("red", RGBColor(214, 39, 40)),
    ("blue", RGBColor(31, 119, 180)),
    ("green", RGBColor(44, 160, 44)),
    ("orange", RGBColor(255, 127, 14)),
    ("purple", RGBColor(148, 103, 189)),
    ("brown", RGBColor(140, 86, 75)),
    ("pink", RGBColor(227, 119, 194)),
    ("black", RGBColor(20, 20, 20)),
    ("olive", RGBColor(188, 189, 34)),
    ("cyan", RGBColor(23, 190, 207)),
    ("navy", RGBColor(0, 0, 128)),
    ("grey", RGBColor(127, 127, 127)),
];

/// The colour name of node `i`'s lines.
pub fn color_name(i: usize) -> &'static str {
    COLORS[i % COLORS.len()].0
}

/// Which number of a sample a panel shows.
type Metric = fn(&Sample) -> f64;

const W: u32 = 1200;
const H: u32 = 800;

/// Well-known places of a sans TrueType font; then any `.ttf` under /usr/share/fonts.
fn font_file() -> Option<PathBuf> {
    let known = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ];
    if let Some(p) = known.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(p);
    }
    let mut dirs = vec![PathBuf::from("/usr/share/fonts")];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("ttf")) {
                return Some(p);
            }
        }
    }
    None
}

/// Registers a system font once per process; whether text can be drawn.
fn have_font() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let Some(bytes) = font_file().and_then(|p| fs::read(p).ok()) else {
            return false;
        };
        // plotters keeps fonts for the whole process; one font, leaked once, is the price.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// Draws the plot to `path`.
pub fn draw(path: &Path, report: &Report) -> Result<()> {
    let quiet: Vec<(f64, f64)> = report
        .quiet_periods
        .iter()
        .map(|q| (q.start_secs, q.end_secs))
        .collect();
    let kills: Vec<(f64, usize)> = report
        .events
        .iter()
        .filter(|e| e.kind == "kill9")
        .map(|e| (e.t, e.node))
        .collect();
    let data = Data {
        samples: &report.samples,
        kills,
        quiet,
        t_end: report.elapsed_secs.max(1.0),
    };
    let font = have_font();
    let mut buf = vec![0u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (top, bottom) = root.split_vertically(H / 2);
        let panels: [(_, &str, Metric); 2] = [
            (top, "RSS (MiB)", |s| mib(s.rss_kib)),
            (bottom, "open fds", |s| s.fds as f64),
        ];
        for (k, (area, label, value)) in panels.into_iter().enumerate() {
            panel(&area, &data, value, font.then_some(label), k == 0)
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let file = fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), W, H);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    // A plot is flat colour: unfiltered rows at the best deflate level are about 8x smaller
    // than the encoder's fast default (56 KB instead of 490 KB for a 10-minute run).
    enc.set_filter(png::FilterType::NoFilter);
    enc.set_adaptive_filter(png::AdaptiveFilterType::NonAdaptive);
    enc.set_compression(png::Compression::Best);
    let mut writer = enc.write_header().context("png header")?;
    writer.write_image_data(&buf).context("png data")?;
    writer.finish().context("png finish")?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// What both panels show.
struct Data<'a> {
    samples: &'a [Sample],
    /// (time, node) of each kill -9.
    kills: Vec<(f64, usize)>,
    /// (start, end) of each quiet period.
    quiet: Vec<(f64, f64)>,
    t_end: f64,
}

fn panel(
    area: &Area<'_>,
    data: &Data<'_>,
    value: Metric,
    label: Option<&str>,
    legend: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let (samples, kills, quiet, t_end) = (data.samples, &data.kills, &data.quiet, data.t_end);
    let y_max = samples.iter().map(value).fold(1.0f64, f64::max) * 1.15;
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if let Some(label) = label {
        builder
            .caption(format!("soak: {label} per node"), ("sans-serif", 20))
            .x_label_area_size(35)
            .y_label_area_size(55);
    }
    let mut chart = builder.build_cartesian_2d(0f64..t_end, 0f64..y_max)?;
    if let Some(label) = label {
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(label)
            .light_line_style(RGBColor(240, 240, 240))
            .draw()?;
    } else {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (t_end, y_max)],
            BLACK.stroke_width(1),
        )))?;
    }
    chart.draw_series(
        quiet.iter().map(|&(a, b)| {
            Rectangle::new([(a, 0.0), (b, y_max)], RGBColor(225, 225, 225).filled())
        }),
    )?;
    // Each kill -9: a tick at the top edge in the victim's colour.
    chart.draw_series(kills.iter().map(|&(t, node)| {
        let color = COLORS[node % COLORS.len()].1;
        PathElement::new([(t, y_max * 0.94), (t, y_max)], color.stroke_width(2))
    }))?;
    let mut runs: Vec<(usize, usize)> = samples.iter().map(|s| (s.node, s.incarnation)).collect();
    runs.sort_unstable();
    runs.dedup();
    let mut labelled = Vec::new();
    for (node, inc) in runs {
        let color = COLORS[node % COLORS.len()].1;
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.node == node && s.incarnation == inc)
            .map(|s| (s.t, value(s)))
            .collect();
        let series = chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
        if legend && label.is_some() && !labelled.contains(&node) {
            labelled.push(node);
            series.label(format!("node {node}")).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 16, y)], color.stroke_width(3))
            });
        }
    }
    if legend && label.is_some() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
