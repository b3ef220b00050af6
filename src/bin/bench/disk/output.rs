//! What the disk-space scenario leaves behind: its samples as CSV and
//! the plot of them as a PNG.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::{Args, Report, Sample, Usage, MIB};

/// A plotted line: its label, colour and the figure it shows.
type Series = (&'static str, plotters::style::RGBColor, fn(&Usage) -> u64);

/// Where a TTF font for the plot's text is looked for, unless `$BENCH_FONT`
/// names one. Without any, the plot is drawn without text.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Writes the samples as CSV (sizes in bytes).
pub(super) fn write_csv(path: &Path, args: &Args, samples: &[Sample]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut out = std::io::BufWriter::new(
        fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(
        out,
        "t_s,phase,msgs_acked,payload_bytes,dir_bytes,segment_bytes,sled_bytes,allocated_bytes,segment_files"
    )?;
    for s in samples {
        writeln!(
            out,
            "{:.3},{},{},{},{},{},{},{},{}",
            s.t,
            if s.publishing { "publish" } else { "tail" },
            s.acked,
            s.acked * args.size as u64,
            s.usage.total,
            s.usage.segments,
            s.usage.sled,
            s.usage.allocated,
            s.usage.segment_files
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Registers a TTF font for the plot's text; false if none was found.
fn load_font() -> bool {
    // `$BENCH_FONT`, when set, is the only candidate.
    let from_env = std::env::var("BENCH_FONT").ok();
    let candidates: Vec<&str> = match &from_env {
        Some(path) => vec![path.as_str()],
        None => FONT_PATHS.to_vec(),
    };
    for path in candidates {
        if let Ok(bytes) = fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                bytes,
            )
            .is_ok()
            {
                return true;
            }
        }
    }
    false
}

/// Plots the store directory's size (top) and the payload published
/// (bottom) over time.
pub(super) fn plot(
    path: &Path,
    args: &Args,
    samples: &[Sample],
    report: &Report,
) -> anyhow::Result<()> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let text = load_font();
    if !text {
        eprintln!("no TTF font found (set BENCH_FONT to one): the plot has no text");
    }
    let m = |b: u64| b as f64 / MIB;
    let x_max = samples.last().map_or(1.0, |s| s.t).max(1.0);
    let size_max = m(report.peak_all).max(args.max_dir_mb.unwrap_or(0.0)) * 1.15;
    let payload_max = samples
        .last()
        .map_or(1.0, |s| m(s.acked * args.size as u64))
        .max(1.0)
        * 1.05;

    let root = BitMapBackend::new(path, (1280, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(600);
    let font = |px: u32| ("sans-serif", px).into_font();

    let mut builder = ChartBuilder::on(&top);
    builder.margin(15).margin_right(30);
    if text {
        builder
            .caption(&args.title, font(26))
            .x_label_area_size(40)
            .y_label_area_size(80);
    }
    let mut chart = builder.build_cartesian_2d(0f64..x_max, 0f64..size_max.max(1.0))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("time since the first publish (s)")
            .y_desc("store directory size (MiB)")
            .label_style(font(16))
            .axis_desc_style(font(18));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;

    let marker = |t: f64| vec![(t, 0.0), (t, size_max)];
    let grey = RGBColor(150, 150, 150);
    chart.draw_series(DashedLineSeries::new(
        marker(report.warmup_t),
        6,
        6,
        grey.stroke_width(1),
    ))?;
    chart.draw_series(DashedLineSeries::new(
        marker(report.pub_end_t),
        6,
        6,
        grey.stroke_width(1),
    ))?;
    let series: [Series; 3] = [
        ("whole directory", RGBColor(31, 119, 180), |u| u.total),
        ("segment files (msgs/)", RGBColor(44, 160, 44), |u| {
            u.segments
        }),
        ("sled files", RGBColor(214, 39, 40), |u| u.sled),
    ];
    for (label, color, get) in series {
        let drawn = chart.draw_series(LineSeries::new(
            samples.iter().map(|s| (s.t, m(get(&s.usage)))),
            color.stroke_width(2),
        ))?;
        if text {
            drawn.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        }
    }
    if let Some(bound) = args.max_dir_mb {
        let drawn = chart.draw_series(DashedLineSeries::new(
            vec![(0.0, bound), (x_max, bound)],
            12,
            6,
            BLACK.stroke_width(2),
        ))?;
        if text {
            drawn
                .label(format!("asserted bound after the warm-up ({bound} MiB)"))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2))
                });
        }
    }
    if text {
        // Each marker's name beside its line, on the side with room.
        for (name, t) in [
            ("end of warm-up", report.warmup_t),
            ("last PubAck", report.pub_end_t),
        ] {
            let (h, dx) = if t > x_max * 0.75 {
                (HPos::Right, -x_max * 0.005)
            } else {
                (HPos::Left, x_max * 0.005)
            };
            chart.draw_series([Text::new(
                name.to_string(),
                (t + dx, size_max * 0.6),
                font(14).color(&grey).pos(Pos::new(h, VPos::Center)),
            )])?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }

    let mut builder = ChartBuilder::on(&bottom);
    builder.margin(15).margin_right(30);
    if text {
        builder.x_label_area_size(40).y_label_area_size(80);
    }
    let mut chart = builder.build_cartesian_2d(0f64..x_max, 0f64..payload_max)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("time since the first publish (s)")
            .y_desc("payload acked (MiB)")
            .label_style(font(16))
            .axis_desc_style(font(18));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    let orange = RGBColor(255, 127, 14);
    let drawn = chart.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, m(s.acked * args.size as u64))),
        orange.stroke_width(2),
    ))?;
    if text {
        let n = samples.last().map_or(0, |s| s.acked);
        drawn
            .label(format!(
                "{n} msgs of {} B acknowledged (cumulative)",
                args.size
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], orange.stroke_width(2))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
