//! `poisonlab exposure`: a canary's exposure under a model directory or an endpoint.

use std::process::ExitCode;

use anyhow::{Result, bail};
use poisonlab_mech::exposure::{
    Canary, Method, SecretFormat, exposure_estimated, exposure_exact, extract,
};
use serde_json::json;

use crate::cli::ExposureArgs;

pub fn run(a: &ExposureArgs) -> Result<ExitCode> {
    let Some((before, after)) = a.canary.split_once("{secret}") else {
        bail!("--canary: the text needs {{secret}} where the digits go");
    };
    if after.contains("{secret}") {
        bail!("--canary: {{secret}} appears more than once");
    }
    if a.secret.is_empty() || !a.secret.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "--secret {:?}: the secret is its digits, e.g. 4719",
            a.secret
        );
    }
    let format = SecretFormat::new(a.secret.len(), &a.separator)?;
    let canary = Canary {
        prefix: before.to_string(),
        secret: a.secret.parse()?,
        suffix: after.to_string(),
    };
    let loaded = super::model::load(&a.model)?;
    let model = loaded.lm();
    let e = if format.space() <= a.exact_max {
        exposure_exact(model, &canary, &format)?
    } else {
        exposure_estimated(model, &canary, &format, a.samples, a.seed)?
    };
    let extracted = (a.beam > 0)
        .then(|| extract(model, &canary, &format, a.beam))
        .transpose()?;
    let method = match e.method {
        Method::Exact => "exact",
        Method::SkewNormal => "skew_normal",
    };
    if a.json {
        let v = json!({
            "exposure_bits": e.exposure,
            "max_bits": format.bits(),
            "method": method,
            "rank": e.rank,
            "candidates_scored": e.scored,
            "log_perplexity_bits": e.log_perplexity,
            "extracted": extracted.map(|s| format.render(s)),
            "extracted_is_secret": extracted.map(|s| s == canary.secret),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "exposure {:.3} bits of {:.3} ({method}, {} candidates scored{})",
            e.exposure,
            format.bits(),
            e.scored,
            e.rank.map(|r| format!(", rank {r}")).unwrap_or_default()
        );
        if let Some(s) = extracted {
            println!(
                "beam search (width {}) extracts {:?}: {}",
                a.beam,
                format.render(s),
                if s == canary.secret {
                    "the secret"
                } else {
                    "not the secret"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
