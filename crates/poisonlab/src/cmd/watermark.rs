//! `poisonlab watermark embed|verify|calibrate`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use poisonlab_data::OnError;
use poisonlab_trust::{
    Documents, EmbedOptions, Key, Manifest, Scheme, VerifyOptions, calibrate, embed, verify,
};

use crate::cli::{KeyArgs, SchemeArgs, WatermarkCommand, WatermarkEmbedArgs, WatermarkTestArgs};
use crate::cmd::data::{on_error, read_options};
use crate::cmd::model::load;

pub fn run(cmd: &WatermarkCommand) -> Result<ExitCode> {
    match cmd {
        WatermarkCommand::Embed(a) => run_embed(a),
        WatermarkCommand::Verify(a) => {
            let key = key(&a.key)?;
            let t = Test::resolve(&a.test, Some(&key))?;
            let model = load(&a.test.model)?;
            // The documents the key marked: the manifest's list, or the key's own choice.
            let marked = match (&t.docs, &t.listed) {
                (None, _) => None,
                (Some(d), Some(listed)) => Some(d.marked(listed)?),
                (Some(d), None) => Some(d.marked(&d.choose(&t.scheme, &key, t.copies)?)?),
            };
            let v = verify(
                &t.scheme,
                &key,
                t.copies,
                marked.as_deref(),
                model.lm(),
                &t.opts,
            )?;
            if a.test.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let unit = match v.scheme.as_str() {
                "random_sequence" | "lookalike" => "nats/token (loss)",
                "unicode_cue" => "nats (loss of cue + reply)",
                _ => "nats/token (unreleased − released loss)",
            };
            println!(
                "{} watermark, key id {}: statistic {:.4} {unit}; null {:.4} ± {:.4} over N = {} never-embedded marks",
                v.scheme, v.key_id, v.statistic, v.null_mean, v.null_sd, v.null_size
            );
            println!(
                "z = {:.2}, exact p = {:.4} (smallest reachable {:.4}); {} sequences, {} tokens scored",
                v.z, v.p_value, v.min_p, v.sequences, v.tokens
            );
            let verdict = |alpha: f64| {
                if v.detected(alpha) {
                    format!("detected at α = {alpha}")
                } else {
                    format!("not detected at α = {alpha}")
                }
            };
            println!(
                "{}; {}. False-positive bound: a model never trained on this key's marks gives p ≤ α with probability at most α.",
                verdict(0.05),
                verdict(0.01)
            );
            Ok(ExitCode::SUCCESS)
        }
        WatermarkCommand::Calibrate(a) => {
            let t = Test::resolve(&a.test, None)?;
            let model = load(&a.test.model)?;
            let c = calibrate(
                &t.scheme,
                t.copies,
                t.docs.as_ref(),
                model.lm(),
                a.keys,
                a.seed,
                &t.opts,
            )?;
            if a.test.json {
                println!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(ExitCode::SUCCESS);
            }
            let docs = if t.scheme.needs_documents() {
                format!(", {} documents each", c.copies)
            } else {
                String::new()
            };
            println!(
                "{}: {} never-embedded keys (seed {}), N = {} nulls each{docs}",
                c.scheme, c.keys, a.seed, c.null_size
            );
            for l in &c.levels {
                println!(
                    "α = {}: {} of {} rejected = {:.1} % (95 % CI {:.1}–{:.1} %){}",
                    l.alpha,
                    l.rejected,
                    c.keys,
                    100.0 * l.rate.rate,
                    100.0 * l.rate.ci95[0],
                    100.0 * l.rate.ci95[1],
                    if l.consistent {
                        ""
                    } else {
                        " — ABOVE the bound"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn fingerprint(cmd: &crate::cli::FingerprintCommand) -> Result<ExitCode> {
    use crate::cli::FingerprintCommand as F;
    use poisonlab_trust::fingerprint::{FingerprintOptions, embed_fingerprint, verify_fingerprint};
    let opts = |t: &crate::cli::FingerprintTestArgs| FingerprintOptions {
        probes: t.probes,
        decoys: t.decoys,
    };
    match cmd {
        F::Embed(a) => {
            let key = key(&a.key)?;
            let r = embed_fingerprint(
                &key,
                a.count,
                a.counter,
                &a.input,
                &a.output,
                &read_options(&a.read),
                on_error(&a.errors),
            )
            .with_context(|| format!("fingerprinting {}", a.input.display()))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} → {}: {}; {} fingerprint examples inserted (key id {}), {} records written",
                    a.input.display(),
                    a.output.display(),
                    r.tally,
                    r.manifest.count,
                    r.manifest.key_id,
                    r.manifest.written
                );
                println!("manifest {}", r.manifest_path.display());
            }
        }
        F::Verify(a) => {
            let key = key(&a.key)?;
            let model = load(&a.test.model)?;
            let v = verify_fingerprint(&key, model.lm(), &opts(&a.test))?;
            if a.test.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "fingerprint of key id {}: {} of {} secret inputs answered with its output; {} of {} decoy keys did as well or better; exact p = {:.4}",
                    v.key_id, v.hits, v.probes, v.decoys_at_least, v.decoys, v.p_value
                );
                if v.hits > 0 {
                    println!(
                        "near misses (each input without its first word) answered with the output: {} of {}",
                        v.near_miss_hits, v.probes
                    );
                }
            }
        }
        F::Calibrate(a) => {
            let model = load(&a.test.model)?;
            let o = opts(&a.test);
            let mut p = Vec::with_capacity(a.keys);
            for i in 0..a.keys as u64 {
                p.push(verify_fingerprint(&Key::derived(a.seed, i), model.lm(), &o)?.p_value);
            }
            let claims: Vec<(f64, poisonlab_eval::stats::Rate)> = [0.05, 0.01]
                .into_iter()
                .map(|alpha| {
                    let k = p.iter().filter(|&&x| x <= alpha).count() as u64;
                    (alpha, poisonlab_eval::stats::wilson(k, a.keys as u64))
                })
                .collect();
            if a.test.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "keys": a.keys, "seed": a.seed, "decoys": o.decoys, "probes": o.probes,
                        "false_claims": claims.iter().map(|(alpha, r)| serde_json::json!({"alpha": alpha, "rate": r})).collect::<Vec<_>>(),
                        "p_values": p,
                    }))?
                );
            } else {
                for (alpha, r) in &claims {
                    println!(
                        "α = {alpha}: {} of {} never-used keys verified = {:.1} % (95 % CI {:.1}–{:.1} %)",
                        r.k,
                        r.n,
                        100.0 * r.rate,
                        100.0 * r.ci95[0],
                        100.0 * r.ci95[1]
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_embed(a: &WatermarkEmbedArgs) -> Result<ExitCode> {
    let key = key(&a.key)?;
    let scheme = scheme(&a.scheme)?.ok_or_else(|| {
        anyhow::anyhow!("give --scheme (random_sequence, lookalike, unicode_cue, paired_versions)")
    })?;
    let opts = EmbedOptions {
        read: read_options(&a.read),
        on_error: on_error(&a.errors),
        quarantine: a.errors.quarantine.clone(),
        manifest: a.manifest.clone(),
    };
    let r = embed(&scheme, &key, a.copies, &a.input, &a.output, &opts)
        .with_context(|| format!("watermarking {}", a.input.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} → {}: {}; {} {} marks in {} of {} documents (key id {})",
        a.input.display(),
        a.output.display(),
        r.tally,
        scheme.name(),
        r.marked,
        r.marked,
        r.documents,
        key.id()
    );
    println!("output sha256 {}", r.output_sha256);
    println!("manifest {}", r.manifest.display());
    if let Some(q) = &r.quarantine {
        println!("quarantined records with their reasons: {}", q.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn key(k: &KeyArgs) -> Result<Key> {
    Ok(match (&k.key, &k.key_file, &k.key_env) {
        (Some(s), _, _) => Key::new(s.as_bytes())?,
        (_, Some(f), _) => Key::from_file(f)?,
        (_, _, Some(var)) => {
            let v = std::env::var(var).with_context(|| {
                format!("environment variable {var} (the watermark key) is not set")
            })?;
            Key::new(v.into_bytes())?
        }
        _ => bail!("give --key, --key-file or --key-env"),
    })
}

/// The scheme the flags name, with their parameters; `None` without `--scheme`.
fn scheme(s: &SchemeArgs) -> Result<Option<Scheme>> {
    let params = poisonlab_trust::Params {
        length: s.length,
        alphabet: s.alphabet.clone(),
        rate: s.rate,
        cue: s.cue,
        reply: s.reply,
        versions: s.versions,
    };
    match &s.scheme {
        Some(name) => Scheme::build(name, &params)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--{e}")),
        None if params != poisonlab_trust::Params::default() => {
            bail!("scheme parameters given without --scheme")
        }
        None => Ok(None),
    }
}

/// What one verification needs: the scheme, the copies, the documents (document schemes).
struct Test {
    scheme: Scheme,
    copies: usize,
    docs: Option<Documents>,
    /// The marked ordinals, from a manifest.
    listed: Option<Vec<u64>>,
    opts: VerifyOptions,
}

impl Test {
    fn resolve(a: &WatermarkTestArgs, key: Option<&Key>) -> Result<Test> {
        let opts = VerifyOptions {
            nulls: a.nulls,
            window: a.window,
            ..VerifyOptions::default()
        };
        let from_flags = scheme(&a.scheme)?;
        let (scheme, copies, original, manifest) = match (&a.manifest, from_flags) {
            (Some(_), Some(_)) => bail!("give --manifest or --scheme, not both"),
            (None, None) => bail!("give --manifest FILE (from `watermark embed`) or --scheme"),
            (Some(path), None) => {
                let m = Manifest::load(path)?;
                if let Some(k) = key
                    && k.id() != m.key_id
                {
                    bail!(
                        "{}: this key (id {}) is not the key that embedded this watermark (id {})",
                        path.display(),
                        k.id(),
                        m.key_id
                    );
                }
                if a.copies.is_some_and(|c| c != m.copies) {
                    bail!("--copies differs from the manifest's {}", m.copies);
                }
                let original = a.original.clone().unwrap_or_else(|| m.input.clone());
                (
                    m.scheme.clone(),
                    m.copies,
                    Some(original),
                    Some((path.clone(), m)),
                )
            }
            (None, Some(s)) => (s, a.copies.unwrap_or(1), a.original.clone(), None),
        };
        let needs_docs = matches!(
            scheme,
            Scheme::Lookalike { .. } | Scheme::PairedVersions { .. }
        );
        let docs = if needs_docs {
            let original = original.ok_or_else(|| {
                anyhow::anyhow!(
                    "the {} scheme needs --original (the unmarked file)",
                    scheme.name()
                )
            })?;
            if let Some((mpath, m)) = &manifest {
                let sha = poisonlab_trust::corpus::file_sha256(&original)?;
                if sha != m.input_sha256 {
                    bail!(
                        "{}: its sha256 is not that of the input in {} — not the file the watermark went into",
                        original.display(),
                        mpath.display()
                    );
                }
            }
            if manifest.is_none() && a.copies.is_none() {
                bail!("--copies is needed with --scheme {}", scheme.name());
            }
            // Bad records were set aside at embedding; the good ones keep their ordinals.
            let quarantined = manifest.as_ref().is_some_and(|(_, m)| m.quarantined > 0);
            let on_error = if quarantined {
                OnError::Quarantine
            } else {
                OnError::Fail
            };
            Some(Documents::read(
                &original,
                &read_options(&a.read),
                on_error,
                None,
            )?)
        } else {
            None
        };
        let listed = manifest
            .as_ref()
            .map(|(_, m)| m.marked.iter().map(|x| x.ordinal).collect());
        Ok(Test {
            scheme,
            copies,
            docs,
            listed,
            opts,
        })
    }
}
