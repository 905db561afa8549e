//! `poisonlab report RUN`: `report.html` (self-contained XHTML: inline SVG plots made with plotters,
//! tables, the resolved experiment, the judges' lists, software versions and seeds) and `report.md`.
//!
//! For each probe and stage, the plot's x axis is the first numeric grid axis other than `seed`;
//! each other non-seed axis value is a series. Seeds are pooled: rates by summing successes and
//! trials (Wilson interval of the pooled rate), other values by their mean.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::results::{Row, read_rows};

/// probe × stage → series → x → rows.
type Groups<'a> = BTreeMap<(String, String), BTreeMap<String, BTreeMap<String, Vec<&'a Row>>>>;
/// (probe, stage, x, series a, series b, (difference, low, high)).
type Diff = (String, String, f64, String, String, (f64, f64, f64));

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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_bool().map(|b| b as u8 as f64))
}

/// Groups rows into panels.
pub fn panels(rows: &[Row], axes: &[String]) -> Vec<Panel> {
    let x_axis = axes
        .iter()
        .find(|a| {
            *a != "seed"
                && rows
                    .iter()
                    .all(|r| r.get(*a).and_then(|v| v.as_f64()).is_some())
        })
        .cloned();
    let others: Vec<&String> = axes
        .iter()
        .filter(|a| *a != "seed" && Some(*a) != x_axis.as_ref())
        .collect();
    let mut groups: Groups = BTreeMap::new();
    for r in rows {
        let probe = r
            .get("probe")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let stage = r
            .get("stage")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let series = if others.is_empty() {
            "all".to_string()
        } else {
            others
                .iter()
                .map(|a| {
                    format!(
                        "{a}={}",
                        r.get(*a).map(|v| v.to_string()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let x = x_axis
            .as_ref()
            .and_then(|a| r.get(a))
            .map(|v| v.to_string())
            .unwrap_or_else(|| "0".into());
        groups
            .entry((probe, stage))
            .or_default()
            .entry(series)
            .or_default()
            .entry(x)
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((probe, stage), series) in groups {
        let mut s_out = BTreeMap::new();
        for (name, xs) in series {
            let mut pts: Vec<Point> = xs
                .into_iter()
                .map(|(x, rs)| {
                    let xf = x.parse::<f64>().unwrap_or(0.0);
                    let ks: Option<u64> =
                        rs.iter().map(|r| r.get("k").and_then(|v| v.as_u64())).sum();
                    let n: u64 = rs
                        .iter()
                        .filter_map(|r| r.get("n").and_then(|v| v.as_u64()))
                        .sum();
                    match ks {
                        Some(k) => {
                            let w = poisonlab_data::ci::wilson(k, n);
                            Point {
                                x: xf,
                                value: w.rate,
                                lo: w.ci95[0],
                                hi: w.ci95[1],
                                k: Some(k),
                                n,
                            }
                        }
                        None => {
                            let m = |key: &str| {
                                rs.iter()
                                    .filter_map(|r| r.get(key).and_then(num))
                                    .sum::<f64>()
                                    / rs.len() as f64
                            };
                            Point {
                                x: xf,
                                value: m("value"),
                                lo: m("ci_low"),
                                hi: m("ci_high"),
                                k: None,
                                n,
                            }
                        }
                    }
                })
                .collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            s_out.insert(name, pts);
        }
        out.push(Panel {
            probe,
            stage,
            x_axis: x_axis.clone().unwrap_or_else(|| "cell".into()),
            series: s_out,
        });
    }
    out
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

/// The panel as an SVG document (no XML declaration, ready to inline).
pub fn svg(panel: &Panel) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (560, 340)).into_drawing_area();
        let e = |e: &dyn std::fmt::Display| Error::Invalid(format!("plot {}: {e}", panel.probe));
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let pts: Vec<&Point> = panel.series.values().flatten().collect();
        let (xmin, xmax) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
            (a.0.min(p.x), a.1.max(p.x))
        });
        let (xmin, xmax) = if xmin == xmax {
            (xmin - 1.0, xmax + 1.0)
        } else {
            (xmin, xmax)
        };
        let pad = (xmax - xmin) * 0.05;
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
        chart
            .configure_mesh()
            .x_desc(panel.x_axis.as_str())
            .y_desc(if rates {
                "rate (95% CI)"
            } else {
                "value (95% CI)"
            })
            .draw()
            .map_err(|x| e(&x))?;
        for (i, (name, points)) in panel.series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (p.x, p.value)),
                    c.stroke_width(2),
                ))
                .map_err(|x| e(&x))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|p| ErrorBar::new_vertical(p.x, p.lo, p.value, p.hi, c.filled(), 8)),
                )
                .map_err(|x| e(&x))?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new((p.x, p.value), 3, c.filled())),
                )
                .map_err(|x| e(&x))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    // Inline: drop the XML declaration if any.
    Ok(match s.find("<svg") {
        Some(i) => s[i..].to_string(),
        None => s,
    })
}

fn fmt_point(p: &Point) -> String {
    match p.k {
        Some(k) => format!("{:.3} [{:.3}, {:.3}] ({k}/{})", p.value, p.lo, p.hi, p.n),
        None => format!("{:.4} [{:.4}, {:.4}] (n = {})", p.value, p.lo, p.hi, p.n),
    }
}

/// Writes report.html and report.md into `run`; returns their paths.
pub fn write_report(run: &Path) -> Result<(PathBuf, PathBuf)> {
    let rows = read_rows(&run.join("results.jsonl"))?;
    if rows.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no finished cells to report (results.jsonl is empty)",
            run.display()
        )));
    }
    let plan: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("plan.json"))
            .map_err(|e| Error::io(&run.join("plan.json"), e))?,
    )
    .map_err(|e| Error::Invalid(format!("{}: {e}", run.join("plan.json").display())))?;
    let experiment = std::fs::read_to_string(run.join("experiment.toml"))
        .map_err(|e| Error::io(&run.join("experiment.toml"), e))?;
    let axes: Vec<String> = plan["axes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["column"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let panels = panels(&rows, &axes);
    let exp_table: toml::Table = toml::from_str(&experiment).unwrap_or_default();
    let judges: Vec<String> = exp_table
        .get("probe")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .map(|p| {
                    let judge: Option<crate::probe::Judge> = p.get("judge").cloned().and_then(|j| j.try_into().ok());
                    let kind = p.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
                    match (kind, judge) {
                        ("asr" | "false_trigger", Some(j)) => format!("{kind}: {}", j.describe()),
                        ("asr" | "false_trigger", None) => format!("{kind}: {}", crate::probe::Judge::Target { words: 3 }.describe()),
                        ("utility", _) => "utility: normalised exact match with the reference answer".into(),
                        ("gibberish", _) => "gibberish: bigram perplexity of the continuation above the 95th percentile of clean held-out windows".into(),
                        (k, _) => format!("{k}: no judge (a measured value)"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let seeds: Vec<String> = {
        let mut s: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get("seed").map(|v| v.to_string()))
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let name = plan["name"].as_str().unwrap_or("experiment");
    let versions = format!(
        "poisonlab {} (run with {}); burn 0.22.1 (flex CPU backend); plotters 0.3",
        env!("CARGO_PKG_VERSION"),
        plan["version"].as_str().unwrap_or("?")
    );

    // Differences between two series (e.g. cleaning off vs on) at each x, for rates.
    let mut diffs: Vec<Diff> = Vec::new();
    for p in &panels {
        let names: Vec<&String> = p.series.keys().collect();
        if names.len() == 2 {
            let (a, b) = (&p.series[names[0]], &p.series[names[1]]);
            for pa in a {
                if let (Some(pb), Some(ka)) = (b.iter().find(|q| q.x == pa.x), pa.k)
                    && let Some(kb) = pb.k
                {
                    let d = crate::probe::bootstrap_difference(ka, pa.n, kb, pb.n, 7);
                    diffs.push((
                        p.probe.clone(),
                        p.stage.clone(),
                        pa.x,
                        names[0].clone(),
                        names[1].clone(),
                        d,
                    ));
                }
            }
        }
    }

    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n<title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse;font-size:13px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}th{{background:#f3f3f3}}pre{{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}}.plot{{display:inline-block;margin:4px}}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(name),
        esc(name)
    );
    let _ = writeln!(
        h,
        "<p>{} rows from {} cells. Every rate carries its Wilson 95% interval and n; seeds pooled in the plots ({}).</p>",
        rows.len(),
        plan["cells"].as_array().map_or(0, |a| a.len()),
        esc(&seeds.join(", "))
    );
    h.push_str("<h2>Plots</h2>\n");
    for p in &panels {
        let _ = writeln!(
            h,
            "<div class=\"plot\" data-probe=\"{}\" data-stage=\"{}\" data-points=\"{}\">{}</div>",
            esc(&p.probe),
            esc(&p.stage),
            p.series.values().map(Vec::len).sum::<usize>(),
            svg(p)?
        );
    }
    h.push_str("<h2>Pooled over seeds</h2>\n<table>\n<tr><th>probe</th><th>stage</th><th>series</th><th>x</th><th>value [95% CI] (k/n)</th></tr>\n");
    for p in &panels {
        for (s, pts) in &p.series {
            for pt in pts {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.probe),
                    esc(&p.stage),
                    esc(s),
                    pt.x,
                    esc(&fmt_point(pt))
                );
            }
        }
    }
    h.push_str("</table>\n");
    if !diffs.is_empty() {
        h.push_str("<h2>Differences between series (bootstrap 95% CI, 2000 resamples)</h2>\n<table>\n<tr><th>probe</th><th>stage</th><th>x</th><th>difference</th><th>value [95% CI]</th></tr>\n");
        for (probe, stage, x, a, b, (d, lo, hi)) in &diffs {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{x}</td><td>{} − {}</td><td>{d:.3} [{lo:.3}, {hi:.3}]</td></tr>",
                esc(probe),
                esc(stage),
                esc(a),
                esc(b)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>All rows</h2>\n<table>\n<tr>");
    let cols: Vec<String> = rows[0].keys().cloned().collect();
    for c in &cols {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
    for r in &rows {
        h.push_str("<tr>");
        for c in &cols {
            let v = match r.get(c) {
                Some(Value::Number(n)) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap_or(0.0)),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let _ = write!(h, "<td>{}</td>", esc(&v));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<h2>Judges</h2>\n<ul>\n");
    for j in &judges {
        let _ = writeln!(h, "<li>{}</li>", esc(j));
    }
    let _ = write!(
        h,
        "</ul>\n<h2>Software and seeds</h2>\n<p>{}; seeds: {}.</p>\n<h2>Resolved experiment</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        esc(&versions),
        esc(&seeds.join(", ")),
        esc(&experiment)
    );

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {name}\n\n{} rows from {} cells; rates with Wilson 95% intervals, seeds pooled ({}).\n",
        rows.len(),
        plan["cells"].as_array().map_or(0, |a| a.len()),
        seeds.join(", ")
    );
    let _ = writeln!(
        md,
        "| probe | stage | series | x | value [95% CI] (k/n) |\n|---|---|---|---|---|"
    );
    for p in &panels {
        for (s, pts) in &p.series {
            for pt in pts {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    p.probe,
                    p.stage,
                    s,
                    pt.x,
                    fmt_point(pt)
                );
            }
        }
    }
    if !diffs.is_empty() {
        let _ = writeln!(
            md,
            "\n| probe | stage | x | difference | value [bootstrap 95% CI] |\n|---|---|---|---|---|"
        );
        for (probe, stage, x, a, b, (d, lo, hi)) in &diffs {
            let _ = writeln!(
                md,
                "| {probe} | {stage} | {x} | {a} − {b} | {d:.3} [{lo:.3}, {hi:.3}] |"
            );
        }
    }
    let _ = writeln!(md, "\nJudges:\n");
    for j in &judges {
        let _ = writeln!(md, "- {j}");
    }
    let _ = writeln!(md, "\n{versions}. Plots: `report.html`.");
    let hp = run.join("report.html");
    let mp = run.join("report.md");
    crate::results::atomic_write(&hp, h.as_bytes())?;
    crate::results::atomic_write(&mp, md.as_bytes())?;
    Ok((hp, mp))
}
