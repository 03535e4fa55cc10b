//! `--plot FILE.svg`: throughput over time (per 100 ms) above, latency
//! percentiles per half second below (log scale), with plotters' SVG backend.

use std::path::Path;
use std::time::Duration;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::failure::Failure;

use super::recorder::Percentiles;
use super::report::Summary;
use super::timeline::{Timeline, THROUGHPUT_BUCKET};

const SIZE: (u32, u32) = (1000, 720);
const FONT: &str = "sans-serif";
/// Colours of the lines: pushed, handled; p50, p90, p99, max.
const PUSHED: RGBColor = RGBColor(31, 119, 180);
const HANDLED: RGBColor = RGBColor(214, 39, 40);
const PERCENTILES: [RGBColor; 4] = [
    RGBColor(44, 160, 44),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

/// Draws the run to `path`.
pub(crate) fn draw(path: &Path, summary: &Summary, timeline: &Timeline) -> Result<(), Failure> {
    let failed = |error: String| Failure::Other(format!("cannot draw {}: {error}", path.display()));
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(e.to_string()))?;
    let title = format!("actorbus bench: {}", summary.setup());
    let root = (root.titled(&title, (FONT, 20))).map_err(|e| failed(e.to_string()))?;
    let (upper, lower) = root.split_vertically(SIZE.1 / 2 - 20);
    throughput(&upper, timeline).map_err(|e| failed(e.to_string()))?;
    latency(&lower, timeline).map_err(|e| failed(e.to_string()))?;
    root.present().map_err(|e| failed(e.to_string()))?;
    // plotters reports a failed write only when the area is dropped; a
    // missing file would otherwise pass for success.
    drop(root);
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > 0 => Ok(()),
        Ok(_) => Err(failed("the file is empty".to_owned())),
        Err(error) => Err(failed(error.to_string())),
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error + 'static>>;

/// Pushed and handled messages per second, one point per 100 ms bucket.
fn throughput(area: &Area<'_>, timeline: &Timeline) -> Drawn {
    let points = &timeline.throughput;
    let end = points.last().map_or(1.0, |p| p.at).max(0.1);
    let top = (points.iter())
        .map(|p| p.pushed.max(p.handled))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let caption = format!(
        "throughput (msgs/s, per {} ms)",
        THROUGHPUT_BUCKET.as_millis()
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("msgs/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let lines = [
        (
            "pushed",
            PUSHED,
            points.iter().map(|p| (p.at, p.pushed)).collect::<Vec<_>>(),
        ),
        (
            "handled",
            HANDLED,
            points.iter().map(|p| (p.at, p.handled)).collect(),
        ),
    ];
    draw_lines(&mut chart, lines)
}

/// p50, p90, p99 and max of push-to-handler latency per half second, in ms on
/// a log scale (a backlog makes the max orders of magnitude above p50).
fn latency(area: &Area<'_>, timeline: &Timeline) -> Drawn {
    let seconds = &timeline.latency;
    let end = seconds.last().map_or(1.0, |(at, _)| *at).max(0.1);
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0).max(0.001);
    let values = || seconds.iter().filter(|(_, p)| p.count > 0).map(|(_, p)| p);
    let low = values().map(|p| ms(p.p50)).fold(f64::INFINITY, f64::min);
    let high = values().map(|p| ms(p.max)).fold(0.0, f64::max);
    let (low, high) = if low.is_finite() {
        (low / 2.0, high * 2.0)
    } else {
        (0.01, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(
            "latency, push to handler (ms, per 500 ms, log scale)",
            (FONT, 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..end, (low..high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    let lines = (Percentiles::NAMES.into_iter().zip(PERCENTILES).enumerate()).map(
        |(i, (label, colour))| {
            let line = (seconds.iter())
                .filter(|(_, p)| p.count > 0)
                .map(|(at, p)| (*at, ms(p.values()[i])))
                .collect();
            (label, colour, line)
        },
    );
    draw_lines(&mut chart, lines)
}

/// Draws each `(label, colour, points)` as a line, and their legend.
fn draw_lines<'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    lines: impl IntoIterator<Item = (&'static str, RGBColor, Vec<(f64, f64)>)>,
) -> Drawn {
    for (label, colour, line) in lines {
        chart
            .draw_series(LineSeries::new(line, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
