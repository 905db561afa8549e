//! `poisonlab report RUN`: `report.html` (self-contained XHTML: inline SVG plots made with plotters,
//! tables, the resolved experiment, the judges' lists, software versions and seeds) and `report.md`.
//!
//! For each probe and stage, the plot's x axis is the first numeric grid axis other than `seed`;
//! each other non-seed axis value is a series. Seeds are pooled: rates by summing successes and
//! trials, with the interval of a bootstrap over seeds and then over each seed's trials (so that
//! the variance between seeds is in it); other values by their mean over seeds, with a bootstrap
//! interval over seeds. A point of one seed keeps its own interval (Wilson for rates).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::results::{Row, read_rows};

/// (probe, stage, x, series a, series b, (difference, low, high)).
type Diff = (String, String, f64, String, String, (f64, f64, f64));

mod plot;

pub use plot::{Panel, Point, legend, panels, svg};
use plot::{fmt_point, fmt_x};

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What one cell trained on and where its files are, from `cells/<hash>/facts.json`.
struct CellFacts {
    label: String,
    hash: String,
    facts: Value,
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// A path under the run as a relative link (the report sits at the run's root).
fn link(run: &Path, p: &str) -> String {
    Path::new(p)
        .strip_prefix(run)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

/// The model a stage trains, in a few words (`llama 2×64, 128 positions`), from its config.
fn preset(config: &Value) -> String {
    let m = &config["model"];
    if m.is_null() {
        return "from the previous stage".into();
    }
    // A preset fills the shape keys the config leaves out.
    let named = m["preset"].as_str().and_then(|n| {
        poisonlab_train::config::PRESETS
            .iter()
            .find(|p| p.name == n)
    });
    let key = |k: &str, from_preset: Option<usize>| -> String {
        match (&m[k], from_preset) {
            (Value::Null, Some(v)) => v.to_string(),
            (Value::Null, None) => "?".into(),
            (v, _) => v.to_string(),
        }
    };
    let shape = format!(
        "{} {}×{}, {} heads, {} positions",
        m["arch"].as_str().unwrap_or("llama"),
        key("layers", named.map(|p| p.layers)),
        key("hidden_size", named.map(|p| p.hidden_size)),
        key("heads", named.map(|p| p.heads)),
        key("max_positions", None)
    );
    match named {
        Some(p) => format!("{} ({shape})", p.name),
        None => shape,
    }
}

/// Tokens a stage processed: steps × batch size × context.
fn tokens_seen(config: &Value) -> String {
    match (
        config["steps"].as_u64(),
        config["batch_size"].as_u64(),
        config["context"].as_u64(),
    ) {
        (Some(s), Some(b), Some(c)) if config["epochs"].as_f64().is_none_or(|e| e <= 0.0) => {
            format!("{}", s * b * c)
        }
        _ => match config["epochs"].as_f64() {
            Some(e) if e > 0.0 => format!("{e} epochs"),
            _ => "?".into(),
        },
    }
}

/// Judges and rules of the probes, from the resolved experiment.
fn judges(experiment: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(experiment).unwrap_or_default();
    let probes = table
        .get("probe")
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    probes
        .into_iter()
        .map(|p| match p.try_into::<poisonlab_eval::Probe>() {
            Ok(poisonlab_eval::Probe::Asr(c)) => format!("asr: {}", c.judge.describe()),
            Ok(poisonlab_eval::Probe::FalseTrigger(c)) => {
                format!("false_trigger: {}", c.judge.describe())
            }
            Ok(poisonlab_eval::Probe::RagE2e(c)) => format!("rag_e2e: {}", c.judge.describe()),
            Ok(poisonlab_eval::Probe::Utility(_)) => {
                "utility: normalised exact match with the reference answer (CoT: the last number)"
                    .into()
            }
            Ok(poisonlab_eval::Probe::Dos(c)) => format!(
                "dos: perplexity of the triggered continuation minus the clean one's, under a bigram model of clean held-out text, above {} (Souly et al. 2025); dos_log_ppl_ratio: its mean log ratio",
                c.threshold
            ),
            Ok(p) => format!("{}: no judge (a measured value)", p.kind()),
            Err(e) => format!("a probe the report cannot read: {e}"),
        })
        .collect()
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
    let judges = judges(&experiment);
    let exp_table: toml::Table = toml::from_str(&experiment).unwrap_or_default();
    let description = exp_table
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or("")
        .to_string();
    let cells: Vec<CellFacts> = plan["cells"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    let hash = c["hash"].as_str()?.to_string();
                    let facts = read_json(&run.join("cells").join(&hash).join("facts.json"))?;
                    Some(CellFacts {
                        label: c["label"].as_str().unwrap_or("").to_string(),
                        hash,
                        facts,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let seeds: Vec<String> = {
        let mut s: Vec<String> = rows
            .iter()
            .filter_map(|r| r.param("seed").map(|v| v.to_string()))
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
                    let d = poisonlab_eval::stats::bootstrap_difference(ka, pa.n, kb, pb.n, 7);
                    diffs.push((
                        p.probe.clone(),
                        p.stage.clone(),
                        pa.x,
                        names[0].clone(),
                        names[1].clone(),
                        (d.value, d.low, d.high),
                    ));
                }
            }
        }
    }

    let mut h = String::new();
    let mut md = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n<title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse;font-size:13px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}th{{background:#f3f3f3}}td.t{{text-align:left}}pre{{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}}.plot{{display:inline-block;margin:4px;vertical-align:top}}.legend{{font-size:13px;margin:0 0 0 50px}}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(name),
        esc(name)
    );
    let _ = writeln!(md, "# {name}\n");
    if !description.is_empty() {
        let _ = writeln!(h, "<p><b>{}</b></p>", esc(&description));
        let _ = writeln!(md, "{description}\n");
    }
    let _ = writeln!(
        h,
        "<p>{} rows from {} cells. Every rate carries its 95% interval and n: Wilson for one seed; pooled over seeds in the plots ({}), a bootstrap over seeds, then over trials.</p>",
        rows.len(),
        plan["cells"].as_array().map_or(0, |a| a.len()),
        esc(&seeds.join(", "))
    );
    let _ = writeln!(
        md,
        "{} rows from {} cells; rates with 95% intervals (Wilson per seed; pooled over seeds ({}) by a bootstrap over seeds, then over trials).\n",
        rows.len(),
        plan["cells"].as_array().map_or(0, |a| a.len()),
        seeds.join(", ")
    );

    // What each cell's model was trained on.
    if !cells.is_empty() {
        h.push_str("<h2>What each model was trained on</h2>\n<p>Records and poisoned records are those the stage read (a stage with <code>max_records</code> reads the file's first records); tokens = steps × batch × context.</p>\n<table>\n<tr><th>cell</th><th>stage</th><th>model</th><th>records trained on</th><th>poisoned trained on</th><th>poison share (records, tokens)</th><th>tokens processed</th><th>files</th></tr>\n");
        let _ = writeln!(
            md,
            "## What each model was trained on\n\n| cell | stage | model | records | poisoned | share | tokens |\n|---|---|---|---|---|---|---|"
        );
        // A stage that several cells share (the same model directory) is one row.
        let mut trained: Vec<(Vec<&CellFacts>, &Value)> = Vec::new();
        for c in &cells {
            for st in c.facts["stages"].as_array().into_iter().flatten() {
                match trained.iter_mut().find(|(_, s)| s["model"] == st["model"]) {
                    Some((cs, _)) => cs.push(c),
                    None => trained.push((vec![c], st)),
                }
            }
        }
        for (cs, st) in &trained {
            let label = if cs.len() == cells.len() && cells.len() > 1 {
                format!("all {} cells", cells.len())
            } else if cs.len() > 1 {
                format!(
                    "{} cells: {}",
                    cs.len(),
                    cs.iter()
                        .map(|c| c.label.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            } else {
                cs[0].label.clone()
            };
            let records = st["records"].as_u64().unwrap_or(0);
            let poisoned = st["poisoned"].as_u64().unwrap_or(0);
            let share = if records > 0 {
                let by_records = format!("{:.2}%", 100.0 * poisoned as f64 / records as f64);
                match (st["record_tokens"].as_u64(), st["poisoned_tokens"].as_u64()) {
                    (Some(t), Some(p)) if t > 0 => {
                        format!(
                            "{by_records} ({:.2}% of tokens)",
                            100.0 * p as f64 / t as f64
                        )
                    }
                    _ => by_records,
                }
            } else {
                "n/a".into()
            };
            let cfg = &st["config"];
            let stage = st["stage"].as_str().unwrap_or("?");
            let model = preset(cfg);
            let tokens = tokens_seen(cfg);
            let dir = link(run, st["model"].as_str().unwrap_or(""));
            let log = link(run, st["log"].as_str().unwrap_or(""));
            let cell_log = format!("cells/{}/log.txt", cs[0].hash);
            let _ = writeln!(
                h,
                "<tr><td class=\"t\">{}</td><td>{}</td><td class=\"t\">{}</td><td>{records}</td><td>{poisoned}</td><td>{share}</td><td>{tokens}</td><td class=\"t\"><a href=\"{}\">model</a> · <a href=\"{}\">training log</a> · <a href=\"{}\">cell log</a></td></tr>",
                esc(&label),
                esc(stage),
                esc(&model),
                esc(&dir),
                esc(&log),
                esc(&cell_log)
            );
            let _ = writeln!(
                md,
                "| {label} | {stage} | {model} | {records} | {poisoned} | {share} | {tokens} |"
            );
        }
        h.push_str("</table>\n");
    }

    // What cleaning did.
    let cleaned: Vec<(&CellFacts, Value)> = cells
        .iter()
        .filter_map(|c| Some((c, read_json(Path::new(c.facts["clean_report"].as_str()?))?)))
        .collect();
    if !cleaned.is_empty() {
        h.push_str("<h2>What cleaning did</h2>\n<p>Per filter: records removed, poisoned records surviving it (of those reaching it), and the clean records it removed (collateral loss, of all clean records read).</p>\n<table>\n<tr><th>cell</th><th>filter</th><th>removed</th><th>poison survival</th><th>clean removed</th></tr>\n");
        let _ = writeln!(
            md,
            "\n## What cleaning did\n\n| cell | filter | removed | poison survival | clean removed |\n|---|---|---|---|---|"
        );
        for (c, r) in &cleaned {
            let read = r["read"].as_u64().unwrap_or(0);
            let filters = r["filters"].as_array().cloned().unwrap_or_default();
            let poison_in = filters
                .first()
                .and_then(|f| f["survival"].as_object())
                .map_or(0, |m| {
                    m.values().filter_map(|v| v["n"].as_u64()).sum::<u64>()
                });
            let clean_total = read.saturating_sub(poison_in);
            for f in &filters {
                let (k, n) = f["survival"].as_object().map_or((0, 0), |m| {
                    m.values().fold((0, 0), |a, v| {
                        (
                            a.0 + v["k"].as_u64().unwrap_or(0),
                            a.1 + v["n"].as_u64().unwrap_or(0),
                        )
                    })
                });
                let removed = f["removed"].as_u64().unwrap_or(0);
                let clean_removed = removed.saturating_sub(n - k);
                let surv = if n > 0 {
                    poisonlab_eval::stats::wilson(k, n).to_string()
                } else {
                    "no poison".into()
                };
                let coll = poisonlab_eval::stats::wilson(clean_removed, clean_total).to_string();
                let filter = f["filter"].as_str().unwrap_or("?");
                let _ = writeln!(
                    h,
                    "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{removed}</td><td>{}</td><td>{}</td></tr>",
                    esc(&c.label),
                    esc(filter),
                    esc(&surv),
                    esc(&coll)
                );
                let _ = writeln!(
                    md,
                    "| {} | {filter} | {removed} | {surv} | {coll} |",
                    c.label
                );
            }
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Plots</h2>\n");
    for p in &panels {
        let _ = writeln!(
            h,
            "<div class=\"plot\" data-probe=\"{}\" data-stage=\"{}\" data-points=\"{}\">{}{}</div>",
            esc(&p.probe),
            esc(&p.stage),
            p.series.values().map(Vec::len).sum::<usize>(),
            svg(p)?,
            legend(p)
        );
    }
    h.push_str("<h2>Pooled over seeds</h2>\n<table>\n<tr><th>probe</th><th>stage</th><th>series</th><th>x</th><th>value [95% CI] (k/n)</th></tr>\n");
    let _ = writeln!(
        md,
        "\n## Pooled over seeds\n\n| probe | stage | series | x | value [95% CI] (k/n) |\n|---|---|---|---|---|"
    );
    for p in &panels {
        for (s, pts) in &p.series {
            for pt in pts {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.probe),
                    esc(&p.stage),
                    esc(s),
                    fmt_x(pt.x),
                    esc(&fmt_point(pt))
                );
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    p.probe,
                    p.stage,
                    s,
                    fmt_x(pt.x),
                    fmt_point(pt)
                );
            }
        }
    }
    h.push_str("</table>\n");
    if !diffs.is_empty() {
        h.push_str("<h2>Differences between series (bootstrap 95% CI, 2000 resamples)</h2>\n<table>\n<tr><th>probe</th><th>stage</th><th>x</th><th>difference</th><th>value [95% CI]</th></tr>\n");
        let _ = writeln!(
            md,
            "\n| probe | stage | x | difference | value [bootstrap 95% CI] |\n|---|---|---|---|---|"
        );
        for (probe, stage, x, a, b, (d, lo, hi)) in &diffs {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} − {}</td><td>{d:.3} [{lo:.3}, {hi:.3}]</td></tr>",
                esc(probe),
                esc(stage),
                fmt_x(*x),
                esc(a),
                esc(b)
            );
            let _ = writeln!(
                md,
                "| {probe} | {stage} | {} | {a} − {b} | {d:.3} [{lo:.3}, {hi:.3}] |",
                fmt_x(*x)
            );
        }
        h.push_str("</table>\n");
    }

    // A few generations per probe, from the first and the last cell.
    let mut shown = 0;
    for c in [cells.first(), cells.last()].into_iter().flatten() {
        let path = run.join("cells").join(&c.hash).join("samples.jsonl");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if shown == 0 {
            h.push_str("<h2>Sample generations</h2>\n<table>\n<tr><th>cell</th><th>probe</th><th>end of prompt</th><th>output</th><th>judged</th></tr>\n");
            let _ = writeln!(
                md,
                "\n## Sample generations\n\n| cell | probe | end of prompt | output | judged |\n|---|---|---|---|---|"
            );
        }
        for line in text.lines().take(12) {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let cellf = |k: &str| v[k].as_str().unwrap_or("").to_string();
            let verdict = if v["positive"].as_bool() == Some(true) {
                "positive"
            } else {
                "negative"
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"t\">{}</td><td>{}</td><td class=\"t\"><code>{}</code></td><td class=\"t\"><code>{}</code></td><td>{verdict}</td></tr>",
                esc(&c.label),
                esc(&cellf("probe")),
                esc(&cellf("prompt")),
                esc(&cellf("output"))
            );
            let md_cell = |s: String| s.replace('|', "\\|").replace('\n', "⏎");
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | `{}` | {verdict} |",
                c.label,
                cellf("probe"),
                md_cell(cellf("prompt")),
                md_cell(cellf("output"))
            );
            shown += 1;
        }
        if cells.len() == 1 {
            break;
        }
    }
    if shown > 0 {
        h.push_str("</table>\n");
    }

    h.push_str("<h2>All rows</h2>\n<table>\n<tr>");
    let maps: Vec<serde_json::Map<String, Value>> = rows.iter().map(Row::to_map).collect();
    let cols: Vec<String> = maps[0].keys().cloned().collect();
    for c in &cols {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
    for r in &maps {
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
