//! Benchmark figures, each written as `<out_stem>.png` and `<out_stem>.svg`.
//!
//! Text is rendered with DejaVu Sans, embedded in the binary (from the
//! `dejavu` crate) and registered with plotters on first use, so no system
//! font is needed.

use crate::report::{BeamPoint, ConfigSummary};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why a figure could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("nothing to plot: {0}")]
    NoData(&'static str),
    #[error("the embedded font could not be registered")]
    Font,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("drawing failed: {0}")]
    Draw(String),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        PlotError::Draw(e.to_string())
    }
}

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 650);

/// Register the embedded DejaVu Sans under the family names plotters uses.
fn ensure_fonts() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let regular = dejavu::sans::regular();
        let mut ok = true;
        for family in ["sans-serif", "serif", "monospace"] {
            ok &= plotters::style::register_font(family, FontStyle::Normal, regular).is_ok();
        }
        ok &= plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
            .is_ok();
        ok
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A figure that can be drawn on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>;
}

/// Draw `figure` to `<stem>.png` and `<stem>.svg`.
fn render(figure: &impl Figure, stem: &Path, size: (u32, u32)) -> Result<(), PlotError> {
    ensure_fonts()?;
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PlotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let png = with_suffix(stem, ".png");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        figure.draw(&root)?;
        root.present()?;
    }
    let svg = with_suffix(stem, ".svg");
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        figure.draw(&root)?;
        root.present()?;
    }
    Ok(())
}

/// An upper axis bound leaving head room above `max` (at least `min_span`).
fn upper(max: f64, min_span: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        (max * 1.2).max(min_span)
    } else {
        min_span
    }
}

fn color(i: usize) -> RGBAColor {
    Palette99::pick(i).to_rgba()
}

/// Label of a summary: its config, plus the device when several devices are plotted.
fn summary_label(s: &ConfigSummary, many_devices: bool) -> String {
    if many_devices {
        format!("{} ({})", s.config, s.device)
    } else {
        s.config.clone()
    }
}

fn many_devices(summaries: &[ConfigSummary]) -> bool {
    summaries.iter().any(|s| s.device != summaries[0].device)
}

// ---------------------------------------------------------------------------

struct LatencyVsWer {
    points: Vec<(String, f64, f64)>,
    caption: String,
    x_desc: String,
}

impl Figure for LatencyVsWer {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        root.fill(&WHITE)?;
        let x_max = upper(self.points.iter().map(|p| p.1).fold(0.0, f64::max), 0.01);
        let y_max = upper(self.points.iter().map(|p| p.2).fold(0.0, f64::max), 1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(self.caption.as_str(), (FONT, 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc("WER (%)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()?;
        for (i, (label, x, y)) in self.points.iter().enumerate() {
            let c = color(i);
            chart.draw_series(std::iter::once(Circle::new((*x, *y), 7, c.filled())))?;
            let style =
                TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
            chart.draw_series(std::iter::once(Text::new(label.clone(), (*x, *y), style)))?;
        }
        Ok(())
    }
}

/// Scatter of mean latency (x) against corpus WER in percent (y), one
/// labelled point per configuration that has a WER.
pub fn latency_vs_wer(summaries: &[ConfigSummary], out_stem: &Path) -> Result<(), PlotError> {
    let many = summaries.len() > 1 && many_devices(summaries);
    let points: Vec<_> = summaries
        .iter()
        .filter_map(|s| {
            let wer = s.wer?;
            (wer.is_finite() && s.mean_latency_s.is_finite())
                .then(|| (summary_label(s, many), s.mean_latency_s, wer * 100.0))
        })
        .collect();
    time_vs_wer(
        points,
        "Latency vs WER per configuration",
        "mean latency per utterance (s)",
        out_stem,
    )
}

/// Scatter of a time (x, seconds) against WER in percent (y): labelled points
/// `(label, seconds, wer_percent)`.
pub fn time_vs_wer(
    points: Vec<(String, f64, f64)>,
    caption: &str,
    x_desc: &str,
    out_stem: &Path,
) -> Result<(), PlotError> {
    if points.is_empty() {
        return Err(PlotError::NoData("no configuration has a WER"));
    }
    let figure = LatencyVsWer {
        points,
        caption: caption.to_string(),
        x_desc: x_desc.to_string(),
    };
    render(&figure, out_stem, SIZE)
}

// ---------------------------------------------------------------------------

struct SpeedupBars {
    bars: Vec<(String, f64, Option<f64>)>,
}

impl Figure for SpeedupBars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        root.fill(&WHITE)?;
        let n = self.bars.len();
        let y_max = upper(self.bars.iter().map(|b| b.1).fold(1.0, f64::max), 1.2);
        let names: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        let label_of = move |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Speed-up over the baseline (annotated: draft acceptance rate)",
                (FONT, 22),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&label_of)
            .x_desc("configuration")
            .y_desc("speed-up (baseline latency / latency)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .margin(12)
                .style(BLUE.mix(0.7).filled())
                .data(self.bars.iter().enumerate().map(|(i, b)| (i, b.1))),
        )?;
        chart.draw_series(LineSeries::new(
            vec![(SegmentValue::Exact(0), 1.0), (SegmentValue::Last, 1.0)],
            BLACK.stroke_width(1),
        ))?;
        let style =
            TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, (_, speedup, acceptance)) in self.bars.iter().enumerate() {
            let text = match acceptance {
                Some(a) => format!("{speedup:.2}x, acc {:.0}%", a * 100.0),
                None => format!("{speedup:.2}x"),
            };
            chart.draw_series(std::iter::once(Text::new(
                text,
                (SegmentValue::CenterOf(i), *speedup),
                style.clone(),
            )))?;
        }
        Ok(())
    }
}

/// Bars of `speedup_vs_baseline` per configuration (those that have one),
/// each annotated with its draft acceptance rate; a line marks 1.0.
pub fn speedup_per_draft(summaries: &[ConfigSummary], out_stem: &Path) -> Result<(), PlotError> {
    let many = summaries.len() > 1 && many_devices(summaries);
    let bars: Vec<_> = summaries
        .iter()
        .filter_map(|s| {
            let x = s.speedup_vs_baseline?;
            x.is_finite()
                .then(|| (summary_label(s, many), x, s.acceptance_rate))
        })
        .collect();
    if bars.is_empty() {
        return Err(PlotError::NoData("no configuration has a speed-up"));
    }
    render(&SpeedupBars { bars }, out_stem, SIZE)
}

// ---------------------------------------------------------------------------

struct AcceptanceHistogram {
    counts: Vec<u32>,
}

impl Figure for AcceptanceHistogram {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        root.fill(&WHITE)?;
        let max_len = self.counts.len() - 1;
        let max_count = self.counts.iter().copied().max().unwrap_or(0);
        let y_max = ((f64::from(max_count) * 1.15).ceil() as u32).max(1);
        let mut chart = ChartBuilder::on(root)
            .caption("Accepted draft tokens per verification pass", (FONT, 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((0..max_len).into_segmented(), 0u32..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(max_len + 2)
            .x_desc("accepted tokens")
            .y_desc("count")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .margin(4)
                .style(GREEN.mix(0.7).filled())
                .data(self.counts.iter().enumerate().map(|(len, &c)| (len, c))),
        )?;
        Ok(())
    }
}

/// Histogram of accepted lengths (one value per verification pass: how
/// many drafted tokens the main model accepted).
pub fn acceptance_histogram(accepted_lengths: &[usize], out_stem: &Path) -> Result<(), PlotError> {
    let Some(&max) = accepted_lengths.iter().max() else {
        return Err(PlotError::NoData("no accepted lengths"));
    };
    let mut counts = vec![0u32; max + 1];
    for &l in accepted_lengths {
        counts[l] = counts[l].saturating_add(1);
    }
    render(&AcceptanceHistogram { counts }, out_stem, SIZE)
}

// ---------------------------------------------------------------------------

/// One beam-size point of a model: (beam size, WER %, mean latency s).
type BeamSample = (f64, f64, f64);

/// A model's name and its points, sorted by beam size.
type BeamSeries = (String, Vec<BeamSample>);

struct BeamFigure {
    /// One series per model.
    series: Vec<BeamSeries>,
}

impl BeamFigure {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        title: &str,
        y_desc: &str,
        value: impl Fn(&BeamSample) -> f64,
    ) -> Result<(), PlotError> {
        let all = self.series.iter().flat_map(|(_, pts)| pts.iter());
        let (x_min, x_max) = all
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.0), hi.max(p.0))
            });
        let y_max = upper(all.map(&value).fold(0.0, f64::max), 0.01);
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((x_min - 0.5)..(x_max + 0.5), 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("beam size")
            .y_desc(y_desc)
            .x_label_formatter(&|x| {
                if (x - x.round()).abs() < 1e-6 {
                    format!("{}", x.round())
                } else {
                    String::new()
                }
            })
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()?;
        for (i, (model, pts)) in self.series.iter().enumerate() {
            let c = color(i);
            let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, value(p))).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))?
                .label(model.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart.draw_series(line.into_iter().map(|p| Circle::new(p, 5, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()?;
        Ok(())
    }
}

impl Figure for BeamFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        root.fill(&WHITE)?;
        let (w, _) = root.dim_in_pixel();
        let (left, right) = root.split_horizontally(w / 2);
        self.panel(&left, "WER vs beam size", "WER (%)", |p| p.1)?;
        self.panel(
            &right,
            "Latency vs beam size",
            "mean latency per utterance (s)",
            |p| p.2,
        )?;
        Ok(())
    }
}

/// Two panels, beam size against WER (%) and against mean latency, one line
/// per model (points of a model are sorted by beam size).
pub fn beam_plot(points: &[BeamPoint], out_stem: &Path) -> Result<(), PlotError> {
    let mut series: Vec<BeamSeries> = Vec::new();
    for p in points
        .iter()
        .filter(|p| p.wer.is_finite() && p.mean_latency_s.is_finite())
    {
        let entry = (p.beam_size as f64, p.wer * 100.0, p.mean_latency_s);
        match series.iter_mut().find(|(m, _)| *m == p.model) {
            Some((_, pts)) => pts.push(entry),
            None => series.push((p.model.clone(), vec![entry])),
        }
    }
    if series.is_empty() {
        return Err(PlotError::NoData("no beam points"));
    }
    for (_, pts) in &mut series {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    render(&BeamFigure { series }, out_stem, (1300, 600))
}
