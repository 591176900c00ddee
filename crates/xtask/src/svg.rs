//! A small hand-written SVG line chart: panels side by side, each with linear or
//! logarithmic axes, a few series and an optional horizontal reference line. The
//! report needs no more than that, and a plotting crate would bring a font stack
//! and a rasteriser into the workspace for it.

use std::fmt::Write;

const PANEL_W: f64 = 440.0;
const PANEL_H: f64 = 320.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;
const HEADER: f64 = 36.0;

/// Colours that stay apart for the usual forms of colour blindness.
pub const DIRECT: &str = "#0072b2";
pub const GATEWAY: &str = "#d55e00";

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    pub y_log: bool,
    pub series: Vec<Series>,
    /// A horizontal reference (a latency bound) and its label.
    pub hline: Option<(f64, String)>,
}

/// Renders panels in rows of up to three under one title.
pub fn render(title: &str, panels: &[Panel]) -> String {
    let columns = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(columns).max(1);
    let width = PANEL_W * columns as f64;
    let height = HEADER + PANEL_H * rows as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/><text x="12" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        let x0 = PANEL_W * (i % columns) as f64;
        let y0 = HEADER + PANEL_H * (i / columns) as f64;
        render_panel(&mut svg, panel, x0, y0);
    }
    svg.push_str("</svg>\n");
    svg
}

/// An axis: the data range mapped to pixels, linearly or by decades.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool, from_zero: bool) -> Option<Self> {
        let values: Vec<f64> = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() || !hi.is_finite() {
            return None;
        }
        if log {
            let ticks = log_ticks(lo, hi);
            lo = ticks.first().copied().unwrap_or(lo).min(lo);
            hi = ticks.last().copied().unwrap_or(hi).max(hi);
            if hi <= lo {
                hi = lo * 10.0;
            }
            Some(Self { lo, hi, log, ticks })
        } else {
            if from_zero {
                lo = lo.min(0.0);
            }
            if hi <= lo {
                hi = lo + 1.0;
            }
            let ticks = nice_ticks(lo, hi, 5);
            let hi = ticks.last().copied().unwrap_or(hi).max(hi);
            let lo = ticks.first().copied().unwrap_or(lo).min(lo);
            Some(Self { lo, hi, log, ticks })
        }
    }

    /// Position in [0, 1].
    fn unit(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

fn render_panel(svg: &mut String, panel: &Panel, x0: f64, y0: f64) {
    let (left, top) = (x0 + LEFT, y0 + TOP);
    let (w, h) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
        x0 + 12.0,
        y0 + 20.0,
        escape(&panel.title)
    );
    let _ = write!(
        svg,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#888\"/>"
    );
    let xs = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(panel.hline.iter().map(|(v, _)| *v));
    let (Some(x_axis), Some(y_axis)) = (
        Axis::new(xs, panel.x_log, true),
        Axis::new(ys, panel.y_log, true),
    ) else {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data</text>",
            left + w / 2.0,
            top + h / 2.0
        );
        return;
    };
    let px = |v: f64| left + x_axis.unit(v) * w;
    let py = |v: f64| top + h - y_axis.unit(v) * h;
    for &t in &x_axis.ticks {
        let x = px(t);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            top + h,
            top + h + 14.0,
            tick_label(t)
        );
    }
    for &t in &y_axis.ticks {
        let y = py(t);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + w,
            left - 4.0,
            y + 4.0,
            tick_label(t)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + w / 2.0,
        top + h + 32.0,
        escape(&panel.x_label)
    );
    let _ = write!(
        svg,
        r#"<text transform="translate({},{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        x0 + 14.0,
        top + h / 2.0,
        escape(&panel.y_label)
    );
    if let Some((value, label)) = &panel.hline {
        let y = py(*value);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#555\" stroke-dasharray=\"2,3\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            left + w,
            left + w - 4.0,
            y - 4.0,
            escape(label)
        );
    }
    for (i, series) in panel.series.iter().enumerate() {
        let points: Vec<String> = series
            .points
            .iter()
            .filter(|(x, y)| {
                x.is_finite()
                    && y.is_finite()
                    && (!panel.x_log || *x > 0.0)
                    && (!panel.y_log || *y > 0.0)
            })
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let dash = if series.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
            series.color,
            points.join(" ")
        );
        for point in &points {
            if let Some((x, y)) = point.split_once(',') {
                let _ = write!(
                    svg,
                    r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{}"/>"#,
                    series.color
                );
            }
        }
        // Legend, top left inside the plot.
        let ly = top + 14.0 + 14.0 * i as f64;
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{:.1}">{}</text>"#,
            left + 8.0,
            ly - 4.0,
            left + 30.0,
            ly - 4.0,
            series.color,
            left + 35.0,
            ly,
            escape(&series.name)
        );
    }
}

/// Ticks at 1, 2 and 5 times each power of ten, covering [lo, hi].
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi >= lo) {
        return Vec::new();
    }
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    let mut below = None;
    while decade <= hi * 10.0 {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t < lo {
                below = Some(t);
            } else if ticks.last().is_none_or(|&last: &f64| last < hi) {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    if let Some(b) = below {
        ticks.insert(0, b);
    }
    ticks
}

/// About `count` round ticks (steps of 1, 2 or 5 times a power of ten) covering
/// [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) || count == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / count as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor() * step;
    let mut ticks = Vec::new();
    let mut t = first;
    while t < hi + step * 0.999 {
        ticks.push((t / step).round() * step);
        t += step;
    }
    ticks
}

fn tick_label(v: f64) -> String {
    if v >= 1000.0 {
        let k = v / 1000.0;
        if (k - k.round()).abs() < 1e-9 {
            format!("{}k", k.round())
        } else {
            format!("{k:.1}k")
        }
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else if v >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Escapes text for SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(series: Vec<Series>) -> Panel {
        Panel {
            title: "store: false <memory> & more".into(),
            x_label: "requests per second".into(),
            y_label: "latency (ms)".into(),
            x_log: false,
            y_log: true,
            series,
            hline: Some((5.0, "p99 bound 5 ms".into())),
        }
    }

    #[test]
    fn nice_linear_ticks() {
        assert_eq!(nice_ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            nice_ticks(0.0, 12_345.0, 5),
            [0.0, 5000.0, 10_000.0, 15_000.0]
        );
        assert_eq!(nice_ticks(3.0, 3.0, 5), [3.0]);
    }

    #[test]
    fn log_ticks_cover_the_range() {
        assert_eq!(log_ticks(0.3, 4.0), [0.2, 0.5, 1.0, 2.0, 5.0]);
        assert_eq!(log_ticks(1.0, 1.0), [1.0]);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn a_chart_has_a_line_per_series_and_escapes_text() {
        let svg = render(
            "Latency against load",
            &[panel(vec![
                Series {
                    name: "direct p99".into(),
                    color: DIRECT,
                    dashed: false,
                    points: vec![(1000.0, 0.2), (8000.0, 0.9), (12_000.0, 7.0)],
                },
                Series {
                    name: "gateway p99".into(),
                    color: GATEWAY,
                    dashed: true,
                    // An unmeasured (infinite) point is left out, not drawn at the edge.
                    points: vec![(900.0, 0.4), (5000.0, f64::INFINITY)],
                },
            ])],
        );
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("store: false &lt;memory&gt; &amp; more"));
        assert!(svg.contains("p99 bound 5 ms"));
        assert!(svg.contains("stroke-dasharray=\"6,4\""));
    }

    #[test]
    fn an_empty_panel_says_so() {
        let svg = render("Empty", &[panel(Vec::new())]);
        // The reference line alone is no data to plot against.
        assert!(svg.contains("no data"));
    }
}
