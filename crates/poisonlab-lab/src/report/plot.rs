//! The report's plots: rows grouped into panels (a probe after a stage, one series per value of the
//! other axes, seeds pooled), drawn as inline SVG with plotters, with an HTML legend.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plotters::prelude::*;
use serde_json::Value;

use super::esc;
use crate::error::{Error, Result};
use crate::results::Row;

/// probe × stage → series → (x, rows).
type Groups<'a> = BTreeMap<(String, String), BTreeMap<String, Vec<(f64, Vec<&'a Row>)>>>;

#[derive(Debug, Clone)]
pub struct Point {
    pub x: f64,
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    pub k: Option<u64>,
    pub n: u64,
}

/// One plot: a probe after a stage, one series per combination of the other axes.
#[derive(Debug, Clone)]
pub struct Panel {
    pub probe: String,
    pub stage: String,
    pub x_axis: String,
    pub series: BTreeMap<String, Vec<Point>>,
}

/// A series' name as a reader says it: `cleaning on`, `seed = 2`, `poison_rate = 0.01`.
fn series_label(axis: &str, v: &Value) -> String {
    match (axis, v) {
        ("clean", Value::Bool(true)) => "cleaning on".into(),
        ("clean", Value::Bool(false)) => "cleaning off".into(),
        (a, Value::String(s)) => format!("{a} = {s}"),
        (a, v) => format!("{a} = {v}"),
    }
}

/// The axes some probes measure along inside one cell, named last in their measures' names:
/// (the name's key, the plot's x label).
const INNER_AXES: [(&str, &str); 3] = [
    ("index", "hidden index (0 = embeddings)"),
    ("r", "repetitions r"),
    ("step", "corrupted step k"),
];

/// A measure's name split into its base, inner axis and value (`patching/trigger/index=2` →
/// `patching/trigger`, hidden index, 2; `exposure/r=16` → `exposure`, repetitions, 16).
fn inner_axis_of(probe: &str) -> Option<(&str, &'static str, f64)> {
    let (base, last) = probe.rsplit_once('/')?;
    let (key, v) = last.split_once('=')?;
    let (_, label) = INNER_AXES.iter().find(|(k, _)| *k == key)?;
    Some((base, label, v.parse().ok()?))
}

/// A row's series: its values of the `others` axes, as a reader says them (`all` without any).
fn series_of(r: &Row, others: &[&String]) -> String {
    if others.is_empty() {
        return "all".to_string();
    }
    others
        .iter()
        .map(|a| series_label(a, r.param(a).unwrap_or(&Value::Null)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Groups rows into panels: for each probe and stage, one panel over the first numeric grid axis;
/// measures along an axis inside the cell (`…/index=j`, `…/r=R`, `…/step=k`: [`INNER_AXES`]) get
/// one panel per probe and stage over that axis, one series per combination of the grid's axes
/// (seeds pooled).
pub fn panels(rows: &[Row], axes: &[String]) -> Vec<Panel> {
    let (layered, rows): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| inner_axis_of(&r.probe).is_some());
    let mut out = grid_panels(&rows, axes);
    let others: Vec<&String> = axes.iter().filter(|a| *a != "seed").collect();
    let mut by_axis: BTreeMap<&'static str, Groups> = BTreeMap::new();
    for r in layered {
        let Some((base, label, j)) = inner_axis_of(&r.probe) else {
            continue;
        };
        let groups = by_axis.entry(label).or_default();
        let series = series_of(r, &others);
        let xs = groups
            .entry((base.to_string(), r.stage.clone()))
            .or_default()
            .entry(series)
            .or_default();
        match xs.iter_mut().find(|(v, _)| *v == j) {
            Some((_, rs)) => rs.push(r),
            None => xs.push((j, vec![r])),
        }
    }
    for (label, groups) in by_axis {
        out.extend(finish(groups, label));
    }
    out
}

fn finish(groups: Groups, x_axis: &str) -> Vec<Panel> {
    let mut out = Vec::new();
    for ((probe, stage), series) in groups {
        let mut s_out = BTreeMap::new();
        for (name, xs) in series {
            let mut pts: Vec<Point> = xs
                .into_iter()
                .map(|(x, rs)| {
                    let ks: Option<u64> = rs.iter().map(|r| r.k).sum();
                    let n: u64 = rs.iter().map(|r| r.n).sum();
                    pool(x, &rs, ks, n)
                })
                .collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            s_out.insert(name, pts);
        }
        out.push(Panel {
            probe,
            stage,
            x_axis: x_axis.to_string(),
            series: s_out,
        });
    }
    out
}

fn grid_panels(rows: &[&Row], axes: &[String]) -> Vec<Panel> {
    let x_axis = axes
        .iter()
        .find(|a| {
            *a != "seed"
                && rows
                    .iter()
                    .all(|r| r.param(a).and_then(|v| v.as_f64()).is_some())
        })
        .cloned();
    let others: Vec<&String> = axes
        .iter()
        .filter(|a| *a != "seed" && Some(*a) != x_axis.as_ref())
        .collect();
    let mut groups: Groups = BTreeMap::new();
    for &r in rows {
        let series = series_of(r, &others);
        let x = x_axis
            .as_ref()
            .and_then(|a| r.param(a))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let xs = groups
            .entry((r.probe.clone(), r.stage.clone()))
            .or_default()
            .entry(series)
            .or_default();
        match xs.iter_mut().find(|(v, _)| *v == x) {
            Some((_, rs)) => rs.push(r),
            None => xs.push((x, vec![r])),
        }
    }
    finish(groups, x_axis.as_deref().unwrap_or("cell"))
}

/// The rows of one point (the same cell but for its seed), pooled. One row is shown as measured.
/// Rates of several seeds: Σk / Σn with the interval of a bootstrap over seeds, then over each
/// seed's trials, widened to the Wilson interval of Σk / Σn where that is wider. Other values of several seeds: their mean with a bootstrap interval over seeds
/// (never an average of interval endpoints).
fn pool(x: f64, rs: &[&Row], ks: Option<u64>, n: u64) -> Point {
    if let [r] = rs {
        return Point {
            x,
            value: r.value,
            lo: r.ci_low,
            hi: r.ci_high,
            k: r.k,
            n,
        };
    }
    let seed = 0x706f_6f6c;
    match ks {
        Some(k) => {
            let groups: Vec<(u64, u64)> = rs.iter().map(|r| (r.k.unwrap_or(0), r.n)).collect();
            // Never narrower than the Wilson interval of the pooled counts: a bootstrap of 0/n
            // (or n/n) on every seed has no spread at all.
            let w = poisonlab_eval::stats::wilson(k, n);
            let (lo, hi) = poisonlab_eval::stats::bootstrap_clustered_rate(&groups, seed)
                .map_or((0.0, 1.0), |i| {
                    (i.low.min(w.ci95[0]), i.high.max(w.ci95[1]))
                });
            Point {
                x,
                value: if n == 0 { 0.0 } else { k as f64 / n as f64 },
                lo,
                hi,
                k: Some(k),
                n,
            }
        }
        None => {
            let values: Vec<f64> = rs.iter().map(|r| r.value).collect();
            let i = poisonlab_eval::stats::bootstrap_mean(&values, seed);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            Point {
                x,
                value: mean,
                lo: i.map_or(mean, |i| i.low),
                hi: i.map_or(mean, |i| i.high),
                k: None,
                n,
            }
        }
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

/// The distinct x values of a panel, ascending.
fn xs(panel: &Panel) -> Vec<f64> {
    let mut v: Vec<f64> = panel.series.values().flatten().map(|p| p.x).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v.dedup();
    v
}

/// A grid of a dozen values or fewer (a dose like 0/4/16/64) is drawn as categories, evenly
/// spaced and labelled with the values; a longer one on a linear axis.
fn categorical(xs: &[f64]) -> bool {
    xs.len() <= 12
}

pub(super) fn fmt_x(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The panel as an SVG document (no XML declaration, ready to inline). The legend is HTML beside
/// it ([`legend`]), so that it never covers a point.
pub fn svg(panel: &Panel) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (560, 320)).into_drawing_area();
        let e = |e: &dyn std::fmt::Display| Error::Invalid(format!("plot {}: {e}", panel.probe));
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let values = xs(panel);
        let cat = categorical(&values);
        let pos = |x: f64| -> f64 {
            if cat {
                values.iter().position(|v| *v == x).unwrap_or(0) as f64
            } else {
                x
            }
        };
        let (xmin, xmax) = if cat {
            (0.0, values.len().saturating_sub(1) as f64)
        } else {
            (
                values.first().copied().unwrap_or(0.0),
                values.last().copied().unwrap_or(0.0),
            )
        };
        let (xmin, xmax) = if xmin == xmax {
            (xmin - 1.0, xmax + 1.0)
        } else {
            (xmin, xmax)
        };
        let pad = (xmax - xmin) * if cat { 0.15 } else { 0.05 };
        let pts: Vec<&Point> = panel.series.values().flatten().collect();
        let rates = pts.iter().all(|p| p.k.is_some());
        let (ymin, ymax) = if rates {
            (0.0, 1.0)
        } else {
            let lo = pts
                .iter()
                .map(|p| p.lo.min(p.value))
                .fold(f64::INFINITY, f64::min);
            let hi = pts
                .iter()
                .map(|p| p.hi.max(p.value))
                .fold(f64::NEG_INFINITY, f64::max);
            let m = ((hi - lo) * 0.1).max(1e-3);
            (lo - m, hi + m)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} after {}", panel.probe, panel.stage),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((xmin - pad)..(xmax + pad), ymin..ymax)
            .map_err(|x| e(&x))?;
        let label_of = |v: &f64| -> String {
            if cat {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < values.len() {
                    fmt_x(values[i as usize])
                } else {
                    String::new()
                }
            } else {
                fmt_x(*v)
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(panel.x_axis.as_str())
            .y_desc(if rates {
                "rate (95% CI)"
            } else {
                "value (95% CI)"
            })
            .x_label_formatter(&label_of);
        if cat {
            mesh.x_labels(values.len() * 4 + 1);
        }
        mesh.draw().map_err(|x| e(&x))?;
        let offsets = panel.series.len();
        for (i, points) in panel.series.values().enumerate() {
            let c = COLORS[i % COLORS.len()];
            // Series side by side within a category, so that their intervals do not overlap.
            let dx = if cat && offsets > 1 {
                (i as f64 - (offsets - 1) as f64 / 2.0) * 0.06
            } else {
                0.0
            };
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (pos(p.x) + dx, p.value)),
                    c.stroke_width(2),
                ))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(points.iter().map(|p| {
                    ErrorBar::new_vertical(pos(p.x) + dx, p.lo, p.value, p.hi, c.filled(), 8)
                }))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new((pos(p.x) + dx, p.value), 3, c.filled())),
                )
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    // Inline: drop the XML declaration if any.
    Ok(match s.find("<svg") {
        Some(i) => s[i..].to_string(),
        None => s,
    })
}

/// The panel's legend as XHTML: a coloured swatch and the series' name.
pub fn legend(panel: &Panel) -> String {
    let mut h = String::from("<p class=\"legend\">");
    for (i, name) in panel.series.keys().enumerate() {
        let RGBColor(r, g, b) = COLORS[i % COLORS.len()];
        let _ = write!(
            h,
            "<span style=\"color:rgb({r},{g},{b})\">&#9632;</span>&#160;{}&#160;&#160; ",
            esc(name)
        );
    }
    h.push_str("</p>");
    h
}

pub(super) fn fmt_point(p: &Point) -> String {
    match p.k {
        Some(k) => format!("{:.3} [{:.3}, {:.3}] ({k}/{})", p.value, p.lo, p.hi, p.n),
        None => format!("{:.4} [{:.4}, {:.4}] (n = {})", p.value, p.lo, p.hi, p.n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(probe: &str, count: u64, seed: u64, k: u64) -> Row {
        Row {
            cell: format!("c{count}{seed}"),
            params: vec![
                ("poison_count".into(), Value::from(count)),
                ("seed".into(), Value::from(seed)),
            ],
            stage: "sft".into(),
            probe: probe.into(),
            value: k as f64 / 10.0,
            ci_low: 0.0,
            ci_high: 1.0,
            n: 10,
            k: Some(k),
        }
    }

    /// Measures along an axis inside the cell are plotted over that axis (one panel per probe,
    /// one series per grid point, seeds pooled), not as one panel per name.
    #[test]
    fn inner_axes_get_their_own_panels() {
        let mut rows = vec![row("asr", 0, 1, 0), row("asr", 64, 1, 9)];
        for j in 0..3 {
            for count in [0, 64] {
                for seed in [1, 2] {
                    rows.push(row(
                        &format!("layer_probe/absent/index={j}"),
                        count,
                        seed,
                        5 + j,
                    ));
                }
            }
        }
        rows.push(row("exposure/r=16", 0, 1, 3));
        let axes = vec!["poison_count".to_string(), "seed".to_string()];
        let ps = panels(&rows, &axes);
        let names: Vec<(&str, &str)> = ps
            .iter()
            .map(|p| (p.probe.as_str(), p.x_axis.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("asr", "poison_count"),
                ("layer_probe/absent", "hidden index (0 = embeddings)"),
                ("exposure", "repetitions r"),
            ]
        );
        let layer = &ps[1];
        assert_eq!(layer.series.len(), 2, "{:?}", layer.series.keys());
        let s = &layer.series["poison_count = 64"];
        assert_eq!(
            s.iter().map(|p| p.x).collect::<Vec<_>>(),
            vec![0.0, 1.0, 2.0]
        );
        assert_eq!(s[2].k, Some(14));
        assert_eq!(s[2].n, 20);
        assert_eq!(
            inner_axis_of("membership_auroc/loss/words=16/copies=4"),
            None
        );
    }
}
