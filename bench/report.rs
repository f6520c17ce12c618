//! The benchmark report: markdown with tables, targets met or missed, and
//! an SVG chart of throughput against concurrency.

use super::stats::Samples;
use std::fmt::Write as _;

#[derive(Default)]
pub struct Report {
    pub sections: Vec<String>,
    pub targets: Vec<Target>,
    /// (peer, concurrency, documents per second)
    pub throughput: Vec<(String, usize, f64)>,
    /// Further files written beside the report: (name, text).
    pub files: Vec<(String, String)>,
    /// unoserver's start to its first PDF (ms), once scenario 3 measured it.
    pub unoserver_start_ms: Option<f64>,
}

pub struct Target {
    pub scenario: String,
    pub goal: String,
    pub measured: String,
    pub met: bool,
}

impl Report {
    pub fn section(&mut self, title: &str, body: String) {
        self.sections.push(format!("## {title}\n\n{body}"));
    }

    pub fn target(&mut self, scenario: &str, goal: &str, measured: String, met: bool) {
        self.targets.push(Target { scenario: scenario.into(), goal: goal.into(), measured, met });
    }

    pub fn file(&mut self, name: &str, text: String) {
        self.files.push((name.into(), text));
    }

    pub fn markdown(&self, preamble: &str) -> String {
        let mut out = String::from(preamble);
        out.push_str("\n## Targets\n\n| scenario | target | measured | |\n|---|---|---|---|\n");
        for t in &self.targets {
            let verdict = if t.met { "met" } else { "**missed**" };
            let _ = writeln!(out, "| {} | {} | {} | {verdict} |", t.scenario, t.goal, t.measured);
        }
        for section in &self.sections {
            out.push('\n');
            out.push_str(section);
            out.push('\n');
        }
        out
    }

    /// Throughput against concurrency, one line per peer.
    pub fn chart_svg(&self) -> String {
        let (width, height, left, bottom, top, right) = (640.0, 360.0, 60.0, 40.0, 30.0, 150.0);
        let mut levels: Vec<usize> = self.throughput.iter().map(|t| t.1).collect();
        levels.sort_unstable();
        levels.dedup();
        let max = self.throughput.iter().map(|t| t.2).fold(0.0, f64::max).max(1.0) * 1.1;
        let x = |i: usize| left + (width - left - right) * i as f64 / (levels.len().max(2) - 1) as f64;
        let y = |v: f64| height - bottom - (height - bottom - top) * v / max;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{left}\" y=\"18\" font-size=\"14\">Documents per second by concurrent clients</text>\n"
        );
        for step in 0..=4 {
            let value = max * step as f64 / 4.0;
            let _ = writeln!(
                svg,
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{value:.1}</text>",
                width - right,
                left - 6.0,
                y(value) + 4.0,
                y = y(value)
            );
        }
        for (i, level) in levels.iter().enumerate() {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{level}</text>",
                x(i),
                height - bottom + 18.0
            );
        }
        let colors = ["#2456d6", "#d64524", "#1f7a4d", "#8a4fd6"];
        let mut peers: Vec<&str> = Vec::new();
        for (peer, _, _) in &self.throughput {
            if !peers.contains(&peer.as_str()) {
                peers.push(peer);
            }
        }
        for (n, peer) in peers.iter().enumerate() {
            let color = colors[n % colors.len()];
            let points: Vec<String> = self
                .throughput
                .iter()
                .filter(|t| t.0 == *peer)
                .filter_map(|t| levels.iter().position(|l| *l == t.1).map(|i| format!("{:.1},{:.1}", x(i), y(t.2))))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2.5\" points=\"{}\"/>",
                points.join(" ")
            );
            for point in &points {
                let (px, py) = point.split_once(',').unwrap();
                let _ = writeln!(svg, "<circle cx=\"{px}\" cy=\"{py}\" r=\"3.5\" fill=\"{color}\"/>");
            }
            let ly = top + 20.0 + 20.0 * n as f64;
            let _ = writeln!(
                svg,
                "<rect x=\"{}\" y=\"{:.1}\" width=\"14\" height=\"4\" fill=\"{color}\"/><text x=\"{}\" y=\"{:.1}\">{peer}</text>",
                width - right + 15.0,
                ly - 4.0,
                width - right + 35.0,
                ly
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">concurrent clients</text>\n</svg>",
            (left + width - right) / 2.0,
            height - 6.0
        );
        svg
    }
}

/// "12.3 ms (p95 15.0)" or "–" when there are no samples.
pub fn median_p95(samples: &Samples) -> String {
    match (samples.median(), samples.percentile(0.95)) {
        (Some(m), Some(p)) => format!("{m:.1} ms (p95 {p:.1})"),
        _ => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_one_line_per_peer() {
        let mut report = Report::default();
        for (peer, level, rate) in
            [("docconv", 1, 9.0), ("unoserver", 1, 8.0), ("docconv", 4, 18.0), ("unoserver", 4, 8.5)]
        {
            report.throughput.push((peer.into(), level, rate));
        }
        let svg = report.chart_svg();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches(">docconv</text>").count(), 1);
    }
}
