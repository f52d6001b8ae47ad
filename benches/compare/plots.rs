//! The bench's charts, as SVG files beside bench/results.md: throughput ratios against
//! their goals, latency distributions, and resident memory over the whole-orders load.
//! Plain SVG with presentation attributes, readable on GitHub and in any browser.

use std::fmt::Write;

const WIDTH: f64 = 820.0;
const LEFT: f64 = 340.0;
const COLOURS: &[&str] = &[
    "#1565c0", "#2e7d32", "#c62828", "#f9a825", "#6a1b9a", "#00838f",
];

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn svg(title: &str, height: f64, body: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>\n{body}</svg>\n",
        esc(title)
    )
}

/// One bar per row: ShopFlow ÷ its floor, with the row's goal as a tick; green when
/// the goal is met, red when not.
pub fn ratios(title: &str, rows: &[(String, f64, f64)]) -> String {
    let scale = rows
        .iter()
        .flat_map(|(_, r, g)| [*r, *g])
        .fold(1.2_f64, f64::max);
    let per = (WIDTH - LEFT - 60.0) / scale;
    let mut body = String::new();
    for (i, (name, ratio, goal)) in rows.iter().enumerate() {
        let y = 40.0 + i as f64 * 28.0;
        let colour = if ratio >= goal { "#2e7d32" } else { "#c62828" };
        let _ = writeln!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LEFT}\" y=\"{y}\" width=\"{:.1}\" height=\"18\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{ratio:.2}×</text>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"black\" stroke-width=\"2\"/>",
            LEFT - 8.0,
            y + 13.0,
            esc(name),
            ratio * per,
            LEFT + ratio.max(*goal) * per + 8.0,
            y + 13.0,
            LEFT + goal * per,
            LEFT + goal * per,
            y - 3.0,
            y + 21.0
        );
    }
    let bottom = 40.0 + rows.len() as f64 * 28.0;
    let one = LEFT + per;
    let _ = writeln!(
        body,
        "<line x1=\"{one:.1}\" x2=\"{one:.1}\" y1=\"34\" y2=\"{bottom}\" stroke=\"#9e9e9e\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{one:.1}\" y=\"{}\" text-anchor=\"middle\">1.0× (the floor)</text>\
         <text x=\"{LEFT}\" y=\"{}\">black tick: the goal</text>",
        bottom + 14.0,
        bottom + 30.0
    );
    svg(title, bottom + 40.0, &body)
}

/// Lines through (x, y) points, one per series, on axes from zero up to the largest x
/// and `y_top` (the largest y when `None`); `x_label` and `y_label` name them.
pub fn lines(
    title: &str,
    (x_label, y_label): (&str, &str),
    y_top: Option<f64>,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let (top, height, left) = (40.0, 260.0, 70.0);
    let right = WIDTH - 190.0;
    let max = |f: fn(&(f64, f64)) -> f64| {
        series
            .iter()
            .flat_map(|(_, points)| points.iter().map(f))
            .fold(f64::MIN_POSITIVE, f64::max)
    };
    let (x_max, y_max) = (max(|p| p.0) * 1.05, y_top.unwrap_or(max(|p| p.1) * 1.1));
    let x_of = |x: f64| left + x / x_max * (right - left);
    let y_of = |y: f64| top + height - y / y_max * height;
    let mut body = String::new();
    let b = top + height;
    let _ = writeln!(
        body,
        "<line x1=\"{left}\" x2=\"{right}\" y1=\"{b}\" y2=\"{b}\" stroke=\"black\"/>\
         <line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{b}\" stroke=\"black\"/>\
         <text x=\"{left}\" y=\"{}\">0</text><text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{:.0} {}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        top + height + 15.0,
        top + height + 15.0,
        x_max,
        esc(x_label),
        left - 5.0,
        top + 10.0,
        y_max,
        left - 5.0,
        top + 26.0,
        esc(y_label)
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", x_of(x), y_of(y)))
            .collect();
        let _ = writeln!(
            body,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            path.join(" "),
            right + 15.0,
            top + i as f64 * 20.0,
            right + 32.0,
            top + i as f64 * 20.0 + 10.0,
            esc(name)
        );
    }
    svg(title, top + height + 30.0, &body)
}

/// The share of samples at or below each value (a cumulative distribution), as points.
pub fn cdf(mut samples: Vec<f64>) -> Vec<(f64, f64)> {
    samples.retain(|s| s.is_finite());
    samples.sort_by(f64::total_cmp);
    let n = samples.len().max(1) as f64;
    samples
        .iter()
        .enumerate()
        .map(|(i, &ms)| (ms, (i + 1) as f64 / n * 100.0))
        .collect()
}
