//! Collection-pipeline attacks on a simulated crawl (after Carlini et al. 2023, "Poisoning
//! web-scale training datasets is practical").
//!
//! Every input document is a page at `base_url + id`. The crawler walks pages in input order at
//! `pages_per_hour`, so page `i` is scheduled at `i / pages_per_hour` hours after the snapshot
//! starts — a schedule the attacker can predict, as with Wikipedia dumps.
//!
//! - **Frontrunning**: the attacker edits each chosen page `lead_minutes` before its predicted
//!   fetch; the real fetch drifts by N(0, `jitter_minutes`); a moderator reverts the edit after an
//!   exponential delay with mean `revert_minutes`. The poison lands iff the fetch falls between the
//!   edit and the revert; otherwise the snapshot holds the clean page.
//! - **Split-view**: the dataset is distributed as an index of URLs with content hashes taken at
//!   indexing time; `download_delay_days` later, the chosen pages (domains the attacker bought)
//!   serve poisoned content, and `benign_change_rate` of the other pages changed for ordinary
//!   reasons. With `integrity = true` the downloader drops every page whose hash differs from the
//!   index — all split-view poison, and the benign changes with it.
//!
//! The budget chooses the attacked pages; the summary reports how many made it into the snapshot
//! with a Wilson 95 % interval, and `<output>.crawl.jsonl` logs every page.

use std::cell::Cell;
use std::path::PathBuf;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    Frontrunning,
    SplitView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlSpec {
    pub attack: Attack,
    #[serde(default = "d_base_url")]
    pub base_url: String,
    #[serde(default = "d_rate")]
    pub pages_per_hour: f64,
    #[serde(default = "d_lead")]
    pub lead_minutes: f64,
    #[serde(default = "d_jitter")]
    pub jitter_minutes: f64,
    #[serde(default = "d_revert")]
    pub revert_minutes: f64,
    #[serde(default = "d_benign")]
    pub benign_change_rate: f64,
    #[serde(default)]
    pub integrity: bool,
    #[serde(default = "d_delay")]
    pub download_delay_days: f64,
}

fn d_base_url() -> String {
    "https://wiki.example.org/page/".into()
}
fn d_rate() -> f64 {
    2000.0
}
fn d_lead() -> f64 {
    5.0
}
fn d_jitter() -> f64 {
    30.0
}
fn d_revert() -> f64 {
    60.0
}
fn d_benign() -> f64 {
    0.01
}
fn d_delay() -> f64 {
    30.0
}

impl CrawlSpec {
    pub fn check(&self) -> Result<(), String> {
        let pos = |k: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("crawl.{k} must be a positive number, got {v}"))
            }
        };
        let nonneg = |k: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("crawl.{k} must be zero or more, got {v}"))
            }
        };
        pos("pages_per_hour", self.pages_per_hour)?;
        nonneg("lead_minutes", self.lead_minutes)?;
        nonneg("jitter_minutes", self.jitter_minutes)?;
        pos("revert_minutes", self.revert_minutes)?;
        nonneg("download_delay_days", self.download_delay_days)?;
        if !(0.0..=1.0).contains(&self.benign_change_rate) {
            return Err(format!(
                "crawl.benign_change_rate must be within [0, 1], got {}",
                self.benign_change_rate
            ));
        }
        if self.attack == Attack::Frontrunning && self.integrity {
            return Err("crawl.integrity checks hashes of a distributed index (split_view); a frontrunning snapshot is hashed when it is taken, so the check cannot catch it — remove it".into());
        }
        Ok(())
    }
}

/// What happened to one page.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Not attacked, unchanged.
    Clean,
    /// Attacked, and the poisoned version is in the snapshot.
    Landed,
    /// Attacked, but the snapshot holds the clean page (fetched before the edit or after the revert).
    Missed,
    /// Attacked (split-view), caught by the integrity check and dropped.
    DroppedPoison,
    /// Not attacked, changed for ordinary reasons, dropped by the integrity check.
    DroppedBenign,
    /// Not attacked, changed for ordinary reasons, kept (no integrity check).
    DriftKept,
}

impl Fate {
    fn as_str(&self) -> &'static str {
        match self {
            Fate::Clean => "clean",
            Fate::Landed => "landed",
            Fate::Missed => "missed",
            Fate::DroppedPoison => "dropped_poison",
            Fate::DroppedBenign => "dropped_benign",
            Fate::DriftKept => "drift_kept",
        }
    }
}

pub use poisonlab_stats::{Rate, wilson};

#[derive(Debug, Clone, Serialize)]
pub struct CrawlReport {
    pub attack: Attack,
    pub integrity: bool,
    pub pages: u64,
    pub attacked: u64,
    pub landed: u64,
    pub missed: u64,
    pub dropped_poison: u64,
    pub dropped_benign: u64,
    pub drift_kept: u64,
    /// Share of attacked pages whose poison is in the snapshot.
    pub landed_rate: Rate,
    pub log: PathBuf,
}

/// The simulation state for one pass.
pub struct Crawl {
    spec: CrawlSpec,
    seed: u64,
    pages: u64,
    counts: [Cell<u64>; 6],
}

struct Timing {
    scheduled: f64,
    fetched: f64,
    edit: Option<f64>,
    revert: Option<f64>,
}

fn normal(rng: &mut rand_chacha::ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Crawl {
    pub fn new(spec: &CrawlSpec, seed: u64, pages: u64) -> Crawl {
        Crawl {
            spec: spec.clone(),
            seed,
            pages,
            counts: Default::default(),
        }
    }

    pub fn attack_name(&self) -> &'static str {
        match self.spec.attack {
            Attack::Frontrunning => "frontrunning",
            Attack::SplitView => "split_view",
        }
    }

    fn timing(&self, ordinal: u64, attacked: bool) -> (Timing, bool, bool) {
        let mut rng = crate::record_rng(self.seed, "crawl", ordinal);
        let s = &self.spec;
        let scheduled = ordinal as f64 / s.pages_per_hour;
        let fetched = scheduled + normal(&mut rng) * s.jitter_minutes / 60.0;
        let revert_delay = -(s.revert_minutes / 60.0) * (1.0 - rng.random_range(0.0..1.0f64)).ln();
        let drift = rng.random_bool(s.benign_change_rate);
        let (edit, revert) = if attacked && s.attack == Attack::Frontrunning {
            let e = scheduled - s.lead_minutes / 60.0;
            (Some(e), Some(e + revert_delay))
        } else {
            (None, None)
        };
        let landed = match (edit, revert) {
            (Some(e), Some(r)) => fetched >= e && fetched < r,
            _ => false,
        };
        (
            Timing {
                scheduled,
                fetched,
                edit,
                revert,
            },
            landed,
            drift,
        )
    }

    /// The fate of page `ordinal`; `attacked` when the budget chose it.
    pub fn fate(&self, ordinal: u64, attacked: bool) -> Fate {
        let (_, landed, drift) = self.timing(ordinal, attacked);
        let f = match (self.spec.attack, attacked) {
            (Attack::Frontrunning, true) => {
                if landed {
                    Fate::Landed
                } else {
                    Fate::Missed
                }
            }
            (Attack::SplitView, true) => {
                if self.spec.integrity {
                    Fate::DroppedPoison
                } else {
                    Fate::Landed
                }
            }
            (Attack::SplitView, false) if drift => {
                if self.spec.integrity {
                    Fate::DroppedBenign
                } else {
                    Fate::DriftKept
                }
            }
            _ => Fate::Clean,
        };
        let i = match f {
            Fate::Clean => 0,
            Fate::Landed => 1,
            Fate::Missed => 2,
            Fate::DroppedPoison => 3,
            Fate::DroppedBenign => 4,
            Fate::DriftKept => 5,
        };
        self.counts[i].set(self.counts[i].get() + 1);
        f
    }

    /// One line of the crawl log.
    pub fn log_line(&self, ordinal: u64, id: &str, sha256: &str, fate: &Fate) -> Value {
        let attacked = matches!(fate, Fate::Landed | Fate::Missed | Fate::DroppedPoison);
        let (t, _, _) = self.timing(ordinal, attacked);
        let r = |h: f64| (h * 1e6).round() / 1e6;
        let mut v = json!({
            "url": format!("{}{}", self.spec.base_url, id),
            "ordinal": ordinal,
            "id": id,
            "scheduled_h": r(t.scheduled),
            "fetched_h": r(if self.spec.attack == Attack::SplitView {
                t.scheduled + self.spec.download_delay_days * 24.0
            } else {
                t.fetched
            }),
            "index_sha256": sha256,
            "status": fate.as_str(),
        });
        if let (Some(e), Some(rv)) = (t.edit, t.revert) {
            v["edit_h"] = json!(r(e));
            v["revert_h"] = json!(r(rv));
        }
        v
    }

    pub fn report(&self, log: PathBuf) -> CrawlReport {
        let c: Vec<u64> = self.counts.iter().map(Cell::get).collect();
        let attacked = c[1] + c[2] + c[3];
        CrawlReport {
            attack: self.spec.attack,
            integrity: self.spec.integrity,
            pages: self.pages,
            attacked,
            landed: c[1],
            missed: c[2],
            dropped_poison: c[3],
            dropped_benign: c[4],
            drift_kept: c[5],
            landed_rate: wilson(c[1], attacked),
            log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontrunning_lands_more_with_longer_reverts() {
        let mut spec = CrawlSpec {
            attack: Attack::Frontrunning,
            base_url: d_base_url(),
            pages_per_hour: d_rate(),
            lead_minutes: 5.0,
            jitter_minutes: 10.0,
            revert_minutes: 5.0,
            benign_change_rate: 0.0,
            integrity: false,
            download_delay_days: 0.0,
        };
        let landed = |spec: &CrawlSpec| {
            let c = Crawl::new(spec, 3, 4000);
            (0..4000)
                .filter(|&i| c.fate(i, true) == Fate::Landed)
                .count()
        };
        let short = landed(&spec);
        spec.revert_minutes = 600.0;
        let long = landed(&spec);
        assert!(long > short, "{long} > {short}");
        assert!(long > 2000 && long < 4000);
    }
}
