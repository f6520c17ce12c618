//! Line charts as SVG, written by hand: a chart is a few dozen elements of
//! text, which no dependency would make shorter or easier to check.
//!
//! A chart is panels stacked one above the other, sharing an x axis of
//! levels (such as concurrent clients) spaced evenly, so 1, 2, 4, 8 and 16
//! read as a doubling scale. Each panel draws its series as polylines and
//! may add references: values measured once, drawn as dashed horizontal
//! lines across the panel.

use std::fmt::Write as _;

pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    pub references: Vec<Reference>,
}

/// One line: (level, value) points, in an SVG colour.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(usize, f64)>,
}

/// A value that does not depend on the level, drawn across the panel.
pub struct Reference {
    pub name: String,
    pub color: &'static str,
    pub value: f64,
}

const WIDTH: f64 = 720.0;
const PANEL_HEIGHT: f64 = 300.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 40.0;

/// The top of an axis that holds `max`, and its tick values from zero: a
/// step of 1, 2 or 5 times a power of ten, five to nine ticks.
pub fn axis(max: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let magnitude = 10f64.powf((max / 4.0).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|step| max / step <= 8.0).unwrap();
    let count = (max / step).ceil().max(1.0) as usize;
    // Multiplied by whole numbers, not summed, so 0.15 stays 0.15.
    let ticks: Vec<f64> = (0..=count).map(|i| i as f64 * step).collect();
    (count as f64 * step, ticks)
}

/// The SVG of `panels` over the levels they hold, `x_label` under each.
pub fn line_chart(panels: &[Panel], x_label: &str) -> String {
    let mut levels: Vec<usize> =
        panels.iter().flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|p| p.0))).collect();
    levels.sort_unstable();
    levels.dedup();
    let height = PANEL_HEIGHT * panels.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (index, panel) in panels.iter().enumerate() {
        draw_panel(&mut svg, panel, &levels, PANEL_HEIGHT * index as f64, x_label);
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_panel(svg: &mut String, panel: &Panel, levels: &[usize], offset: f64, x_label: &str) {
    let values = panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let max = values.chain(panel.references.iter().map(|r| r.value)).fold(0.0, f64::max);
    let (top_value, ticks) = axis(max);
    let decimals = (-ticks[1].log10().floor()).max(0.0) as usize;
    let (plot_left, plot_right) = (LEFT, WIDTH - RIGHT);
    let (plot_top, plot_bottom) = (offset + TOP, offset + PANEL_HEIGHT - BOTTOM);
    let x = |level: usize| {
        let i = levels.iter().position(|l| *l == level).unwrap_or(0);
        plot_left + (plot_right - plot_left) * i as f64 / (levels.len().max(2) - 1) as f64
    };
    let y = |value: f64| plot_bottom - (plot_bottom - plot_top) * value / top_value;
    let _ = writeln!(
        svg,
        "<text x=\"{plot_left}\" y=\"{:.1}\" font-size=\"14\">{}</text>",
        offset + 20.0,
        escape(&panel.title)
    );
    for tick in &ticks {
        let _ = writeln!(
            svg,
            "<line x1=\"{plot_left}\" x2=\"{plot_right}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick:.decimals$}</text>",
            plot_left - 6.0,
            y(*tick) + 4.0,
            ty = y(*tick)
        );
    }
    for level in levels {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{level}</text>",
            x(*level),
            plot_bottom + 16.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (plot_left + plot_right) / 2.0,
        plot_bottom + 32.0,
        escape(x_label)
    );
    let mut legend = 0;
    let mut legend_entry = |svg: &mut String, color: &str, dashed: bool, name: &str| {
        let ly = plot_top + 10.0 + 20.0 * legend as f64;
        let dash = if dashed { " stroke-dasharray=\"5,4\"" } else { "" };
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"2.5\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            plot_right + 15.0,
            plot_right + 35.0,
            ly - 4.0,
            ly - 4.0,
            plot_right + 40.0,
            ly,
            escape(name)
        );
        legend += 1;
    };
    for series in &panel.series {
        let color = series.color;
        let mut sorted = series.points.clone();
        sorted.sort_by_key(|p| p.0);
        let points: Vec<String> = sorted.iter().map(|(l, v)| format!("{:.1},{:.1}", x(*l), y(*v))).collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2.5\" points=\"{}\"/>",
            points.join(" ")
        );
        for (l, v) in &sorted {
            let _ = writeln!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>", x(*l), y(*v));
        }
        legend_entry(svg, color, false, &series.name);
    }
    for reference in &panel.references {
        let color = reference.color;
        let _ = writeln!(
            svg,
            "<line x1=\"{plot_left}\" x2=\"{plot_right}\" y1=\"{ry:.1}\" y2=\"{ry:.1}\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"5,4\"/>",
            ry = y(reference.value)
        );
        legend_entry(svg, color, true, &reference.name);
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element opened is closed, in order, and the document is one
    /// `svg` element: enough of XML's well-formedness for text we write.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<String> = Vec::new();
        let mut rest = svg.trim();
        assert!(rest.starts_with("<svg"), "{svg}");
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("a tag is closed") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "a tag inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "{svg}");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap().to_owned());
            }
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
            rest = &rest[end + 1..];
            if open.is_empty() {
                assert!(rest.trim().is_empty(), "text after the root element");
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
    }

    fn series(name: &str, points: &[(usize, f64)]) -> Series {
        Series { name: name.into(), color: "black", points: points.to_vec() }
    }

    #[test]
    fn axes_end_on_a_round_step_above_the_largest_value() {
        assert_eq!(axis(9.3), (10.0, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]));
        assert_eq!(axis(20.5).0, 25.0);
        assert_eq!(axis(1700.0).0, 2000.0);
        assert!((axis(0.37).0 - 0.4).abs() < 1e-9);
        for max in [0.01, 0.9, 3.0, 4.0, 8.01, 12.0, 16.01, 39.9, 99.0, 101.0, 4321.0] {
            let (top, ticks) = axis(max);
            assert!(top >= max && top <= max * 1.3, "{max} -> {top}");
            assert!((5..=9).contains(&ticks.len()), "{max} -> {ticks:?}");
        }
        // Nothing measured still gives an axis.
        assert_eq!(axis(0.0).0, 1.0);
        assert_eq!(axis(f64::NAN).0, 1.0);
    }

    #[test]
    fn a_chart_is_well_formed_with_one_polyline_per_series_in_each_panel() {
        let panels = [
            Panel {
                title: "Documents per second".into(),
                series: vec![
                    series("docconv, 1 worker", &[(1, 9.0), (2, 10.0), (4, 10.5)]),
                    series("unoserver <1 & 2>", &[(4, 8.0), (1, 7.5), (2, 8.1)]),
                ],
                references: vec![Reference { name: "bare LibreOfficeKit".into(), color: "green", value: 12.0 }],
            },
            Panel {
                title: "p95 latency (ms)".into(),
                series: vec![series("docconv, 1 worker", &[(1, 90.0), (2, 200.0), (4, 400.0)])],
                references: Vec::new(),
            },
        ];
        let svg = line_chart(&panels, "concurrent clients");
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "the reference and its legend entry");
        assert!(svg.contains("unoserver &lt;1 &amp; 2&gt;"));
        // Points go in level order whatever order they were measured in.
        let unoserver = svg.lines().filter(|l| l.starts_with("<polyline")).nth(1).unwrap();
        let xs: Vec<f64> = unoserver
            .split("points=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"/>")
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
    }

    #[test]
    fn values_map_into_the_plot_area() {
        let panel =
            Panel { title: "t".into(), series: vec![series("s", &[(1, 0.0), (16, 10.0)])], references: Vec::new() };
        let svg = line_chart(&[panel], "x");
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let expected = format!("points=\"{LEFT:.1},{:.1} {:.1},{:.1}\"", PANEL_HEIGHT - BOTTOM, WIDTH - RIGHT, TOP);
        assert!(line.contains(&expected), "{line} lacks {expected}");
    }
}
