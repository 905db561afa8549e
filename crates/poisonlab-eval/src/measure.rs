//! One measured value: its estimate, 95 % interval, n, successes (for rates) and how the interval
//! was computed.

use serde::{Deserialize, Serialize};

/// How a measure's interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A rate k/n with its Wilson score interval.
    Wilson,
    /// A ratio of sums with a percentile bootstrap over records.
    BootstrapRatio,
    /// An AUROC with the Hanley–McNeil interval.
    HanleyMcNeil,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// The probe's name in the results (`asr`, `rag_retrieval/bm25`, …).
    pub name: String,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n: u64,
    /// Successes, for rates.
    pub k: Option<u64>,
    pub method: Method,
    /// A few of the generations behind the value, for the report (at most [`SAMPLES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Sample>,
}

/// How many generations a measure keeps as samples.
pub const SAMPLES: usize = 3;

/// One generation a probe judged: the end of its prompt, the model's output, the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The prompt's last 160 characters.
    pub prompt: String,
    pub output: String,
    pub positive: bool,
}

impl Sample {
    pub fn new(prompt: &str, output: &str, positive: bool) -> Sample {
        let n = prompt.chars().count();
        Sample {
            prompt: prompt.chars().skip(n.saturating_sub(160)).collect(),
            output: output.to_string(),
            positive,
        }
    }
}

/// Keeps the first [`SAMPLES`] generations.
pub fn keep(samples: &mut Vec<Sample>, prompt: &str, output: &str, positive: bool) {
    if samples.len() < SAMPLES {
        samples.push(Sample::new(prompt, output, positive));
    }
}

impl Measure {
    pub fn with_samples(mut self, samples: Vec<Sample>) -> Measure {
        self.samples = samples;
        self
    }

    /// k of n with its Wilson interval (value 0 when n = 0, with the interval [0, 1]).
    pub fn rate(name: impl Into<String>, k: u64, n: u64) -> Measure {
        let r = poisonlab_stats::wilson(k, n);
        Measure {
            name: name.into(),
            value: if n == 0 { 0.0 } else { r.rate },
            ci_low: r.ci95[0],
            ci_high: r.ci95[1],
            n,
            k: Some(k),
            method: Method::Wilson,
            samples: Vec::new(),
        }
    }

    /// The mean of per-record `values` with a percentile bootstrap over the records; `None` when
    /// there are none.
    pub fn mean(name: impl Into<String>, values: &[f64], seed: u64) -> Option<Measure> {
        let i = poisonlab_stats::bootstrap_mean(values, seed)?;
        Some(Measure {
            name: name.into(),
            value: i.value,
            ci_low: i.low,
            ci_high: i.high,
            n: values.len() as u64,
            k: None,
            method: Method::BootstrapRatio,
            samples: Vec::new(),
        })
    }
}
