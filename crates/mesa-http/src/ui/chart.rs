//! Server-rendered SVG charts (SPEC §10: no chart library, no script): a bar chart and a line
//! chart with a nice-number axis and gridlines, styled by `app.css` (`.chart`, `.grid`, `.bar`, `.series`, `.s1`…`.s6`, `.legend`).
//! Each chart comes with a visually hidden data table, so screen readers get the numbers.
//!
//! The functions return safe HTML as a template [`Value`]: pass it to a template and output
//! it with `{{ chart }}`.

use std::fmt::Write as _;

use minijinja::Value;

use super::events::escape;
use super::templates::format_usd;

/// How values are written on the axis and in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Dollars ("$1.20").
    Usd,
    /// Plain counts ("12").
    Count,
}

impl Unit {
    fn format(self, v: f64) -> String {
        match self {
            Unit::Usd => format_usd(v),
            Unit::Count => {
                if v.fract().abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            }
        }
    }
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text.
    pub(crate) name: String,
    /// One value per x label.
    pub(crate) values: Vec<f64>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

/// The smallest "nice" number (1, 2 or 5 × 10^k) at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10_f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|n| *n >= v - 1e-12)
        .unwrap_or(10.0 * magnitude)
}

fn y_of(v: f64, max: f64) -> f64 {
    TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (v / max).clamp(0.0, 1.0))
}

/// The frame: title, gridlines with axis values, and x labels (every `step`-th shown).
fn frame(
    out: &mut String,
    title: &str,
    max: f64,
    unit: Unit,
    labels: &[String],
    x_of: &dyn Fn(usize) -> f64,
) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" \
         preserveAspectRatio=\"xMidYMid meet\"><title>{}</title>",
        escape(title),
        escape(title)
    );
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = y_of(v, max);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&unit.format(v))
        );
    }
    let step = labels.len().div_ceil(10).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % step == 0) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x_of(i),
            HEIGHT - BOTTOM + 16.0,
            escape(label)
        );
    }
}

/// The hidden table of the same numbers. Its corner cell is a `<td>`: a header cell without
/// text is one that names nothing (axe's `empty-table-header`).
fn table(out: &mut String, title: &str, labels: &[String], series: &[Series], unit: Unit) {
    let _ = write!(
        out,
        "<table class=\"sr-only\"><caption>{}</caption><thead><tr><td></td>",
        escape(title)
    );
    for s in series {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(&s.name));
    }
    out.push_str("</tr></thead><tbody>");
    for (i, label) in labels.iter().enumerate() {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", escape(label));
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            let _ = write!(out, "<td>{}</td>", escape(&unit.format(v)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// A vertical bar chart: one bar per (label, value).
pub(crate) fn bar_chart(title: &str, bars: &[(String, f64)], unit: Unit) -> Value {
    let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
    let max = nice_ceiling(bars.iter().map(|(_, v)| *v).fold(0.0, f64::max));
    let n = bars.len().max(1);
    #[expect(clippy::cast_precision_loss, reason = "a handful of bars")]
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    #[expect(clippy::cast_precision_loss, reason = "a handful of bars")]
    let x_of = |i: usize| LEFT + slot * (i as f64 + 0.5);
    let mut out = String::with_capacity(1024 + bars.len() * 160);
    out.push_str("<figure class=\"chart-figure\">");
    frame(&mut out, title, max, unit, &labels, &x_of);
    let width = (slot * 0.7).max(1.0);
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = y_of(*v, max);
        let _ = write!(
            out,
            "<rect class=\"bar s1\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" \
             height=\"{:.1}\"><title>{}: {}</title></rect>",
            x_of(i) - width / 2.0,
            (HEIGHT - BOTTOM - y).max(0.0),
            escape(label),
            escape(&unit.format(*v))
        );
    }
    out.push_str("</svg>");
    let series = [Series {
        name: title.to_owned(),
        values: bars.iter().map(|(_, v)| *v).collect(),
    }];
    table(&mut out, title, &labels, &series, unit);
    out.push_str("</figure>");
    Value::from_safe_string(out)
}

/// A line chart: one polyline per series over the x `labels`, with a legend.
pub(crate) fn line_chart(title: &str, labels: &[String], series: &[Series], unit: Unit) -> Value {
    let max = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    );
    let n = labels.len().max(2) - 1;
    #[expect(clippy::cast_precision_loss, reason = "a few hundred points at most")]
    let x_of = |i: usize| LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / n as f64;
    let mut out = String::with_capacity(1024 + labels.len() * series.len() * 16);
    out.push_str("<figure class=\"chart-figure\">");
    frame(&mut out, title, max, unit, labels, &x_of);
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v, max)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"series s{}\" fill=\"none\" points=\"{}\"><title>{}</title></polyline>",
            k % 6 + 1,
            points.join(" "),
            escape(&s.name)
        );
    }
    out.push_str("</svg>");
    if series.len() > 1 {
        out.push_str("<ul class=\"legend\" aria-hidden=\"true\">");
        for (k, s) in series.iter().enumerate() {
            let _ = write!(
                out,
                "<li class=\"s{}\"><span>{}</span></li>",
                k % 6 + 1,
                escape(&s.name)
            );
        }
        out.push_str("</ul>");
    }
    table(&mut out, title, labels, series, unit);
    out.push_str("</figure>");
    Value::from_safe_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_nice_numbers() {
        assert!((nice_ceiling(0.0) - 1.0).abs() < 1e-9);
        assert!((nice_ceiling(3.2) - 5.0).abs() < 1e-9);
        assert!((nice_ceiling(17.0) - 20.0).abs() < 1e-9);
        assert!((nice_ceiling(100.0) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_bar_chart_has_one_bar_per_value_and_a_data_table() {
        let svg = bar_chart(
            "Cost per day",
            &[
                ("Mon".into(), 1.5),
                ("Tue".into(), 0.0),
                ("<x>".into(), 3.0),
            ],
            Unit::Usd,
        )
        .to_string();
        assert_eq!(svg.matches("<rect class=\"bar").count(), 3);
        assert!(svg.contains("$1.50") && svg.contains("<caption>Cost per day</caption>"));
        assert!(
            svg.contains("&lt;x&gt;") && !svg.contains("<x>"),
            "labels are escaped"
        );
    }

    #[test]
    fn a_line_chart_draws_each_series_with_a_legend() {
        let labels: Vec<String> = (1..=5).map(|d| format!("d{d}")).collect();
        let svg = line_chart(
            "Burn-up",
            &labels,
            &[
                Series {
                    name: "planned".into(),
                    values: vec![5.0; 5],
                },
                Series {
                    name: "done".into(),
                    values: vec![0.0, 1.0, 2.0, 4.0, 5.0],
                },
            ],
            Unit::Count,
        )
        .to_string();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("class=\"legend\"") && svg.contains("done"));
    }
}
