//! The files people write — poison specs, experiments, cleaning pipelines, training configs — are
//! TOML with `--set key=value` overrides on top. One place parses them, so that every one of them
//! gets the same errors: an unknown key is pointed at on its own line (serde reports a key inside
//! a tagged table at the table's header), an error in an overridden key names the override, and a
//! number too large for an integer is called that, not "a string".

use serde::de::DeserializeOwned;

/// One `--set key=value`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// As given, for error messages.
    pub raw: String,
    /// The dotted key.
    pub key: String,
    pub value: toml::Value,
}

/// Parses `key=value`. The value is TOML (numbers stay numbers, `true` is a bool, `[1, 2]` a list);
/// anything else is a string, except digits that do not fit a 64-bit integer, which are refused.
pub fn parse_override(o: &str) -> Result<Override, String> {
    let Some((key, value)) = o.split_once('=') else {
        return Err(format!("--set {o}: expected key=value"));
    };
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!("--set {o}: `{key}` is not a dotted key"));
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let value = match parsed {
        Some(v) => v,
        None => {
            let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                return Err(format!(
                    "--set {o}: {value} does not fit a 64-bit integer (at most {})",
                    i64::MAX
                ));
            }
            toml::Value::String(value.to_string())
        }
    };
    Ok(Override {
        raw: o.to_string(),
        key: key.to_string(),
        value,
    })
}

/// Sets a dotted key in a TOML table, creating tables on the way. A number after an array of
/// tables indexes it from 0 (`stage.1.config.steps` is the second `[[stage]]`'s `config.steps`).
pub fn set_key(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}` is not a dotted key"));
    }
    let (last, path) = parts
        .split_last()
        .ok_or_else(|| format!("`{key}` is empty"))?;
    let mut node = table;
    let mut i = 0;
    while i < path.len() {
        let p = path[i];
        let entry = node
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let entry = match entry {
            toml::Value::Array(items) => {
                let Some(ix) = parts.get(i + 1).and_then(|x| x.parse::<usize>().ok()) else {
                    return Err(format!(
                        "`{key}`: `{p}` is a list; give an index, e.g. `{p}.0`"
                    ));
                };
                if i + 1 >= path.len() {
                    return Err(format!(
                        "`{key}`: an element of `{p}` is not a value to set"
                    ));
                }
                let n = items.len();
                i += 1;
                items
                    .get_mut(ix)
                    .ok_or_else(|| format!("`{key}`: `{p}` has {n} entries, no index {ix}"))?
            }
            other => other,
        };
        node = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{key}`: `{p}` is not a table"))?;
        i += 1;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

/// Applies overrides to a table; errors name the override.
pub fn apply(table: &mut toml::Table, overrides: &[String]) -> Result<Vec<Override>, String> {
    let mut out = Vec::with_capacity(overrides.len());
    for o in overrides {
        let ov = parse_override(o)?;
        set_key(table, &ov.key, ov.value.clone()).map_err(|m| format!("--set {o}: {m}"))?;
        out.push(ov);
    }
    Ok(out)
}

/// Parses `text` as `T` with `overrides` on top. Errors are messages without the file name (the
/// caller's error type adds it).
pub fn parse<T: DeserializeOwned>(text: &str, overrides: &[String]) -> Result<T, String> {
    if overrides.is_empty() {
        return toml::from_str::<T>(text).map_err(|e| describe(text, &e));
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| describe(text, &e))?;
    let ovs = apply(&mut table, overrides)?;
    match table.try_into::<T>() {
        Ok(t) => Ok(t),
        Err(e) => {
            let msg = e.message().trim_end().to_string();
            let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
            let culprit = ovs.iter().find(|o| {
                msg.contains(&format!("`{}`", last(&o.key)))
                    || match &o.value {
                        toml::Value::String(s) => msg.contains(&format!("\"{s}\"")),
                        v => msg.contains(&v.to_string()),
                    }
            });
            match (culprit, toml::from_str::<T>(text)) {
                (Some(o), _) => Err(format!("--set {}: {msg}", o.raw)),
                // The file is wrong by itself: say where.
                (None, Err(e)) => Err(describe(text, &e)),
                (None, Ok(_)) => Err(format!("{msg} (with --set {})", overrides.join(" --set "))),
            }
        }
    }
}

/// A TOML error with its line; an unknown key reported at its table's header is moved to the
/// key's own line.
pub fn describe(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim_end();
    let Some(span) = e.span() else {
        return msg.to_string();
    };
    let line_of = |byte: usize| text[..byte.min(text.len())].matches('\n').count();
    let lines: Vec<&str> = text.lines().collect();
    let mut at = line_of(span.start);
    if let Some(key) = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
        && lines
            .get(at)
            .is_some_and(|l| l.trim_start().starts_with('['))
    {
        let is_key = |l: &str| {
            let t = l.trim_start();
            let name = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            t.contains('=') && name == key
        };
        if let Some(i) = (at + 1..lines.len())
            .take_while(|&i| !lines[i].trim_start().starts_with('['))
            .find(|&i| is_key(lines[i]))
        {
            at = i;
        }
    }
    let shown = lines.get(at).copied().unwrap_or("");
    format!("line {}: {msg}\n  | {shown}", at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_key_indexes_arrays_of_tables() {
        let mut t: toml::Table =
            toml::from_str("[[stage]]\nkind = \"a\"\n[[stage]]\nkind = \"b\"\n").unwrap();
        set_key(&mut t, "stage.1.config.steps", toml::Value::Integer(2)).unwrap();
        assert_eq!(t["stage"][1]["config"]["steps"].as_integer(), Some(2));
        assert!(t["stage"][0].get("config").is_none());
        let e = set_key(&mut t, "stage.5.steps", toml::Value::Integer(2)).unwrap_err();
        assert!(e.contains("has 2 entries"), "{e}");
        let e = set_key(&mut t, "stage.steps", toml::Value::Integer(2)).unwrap_err();
        assert!(e.contains("give an index"), "{e}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        word: Option<String>,
        placement: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Trig {
        Badnets(Inner),
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        count: Option<u64>,
        trigger: Option<Trig>,
    }

    #[test]
    fn an_unknown_key_is_shown_on_its_own_line() {
        let text =
            "name = \"x\"\n\n[trigger]\nkind = \"badnets\"\nword = \"cf\"\nplacment = \"start\"\n";
        let e = parse::<Doc>(text, &[]).unwrap_err();
        assert!(e.starts_with("line 6: unknown field `placment`"), "{e}");
        assert!(e.contains("| placment = \"start\""), "{e}");
    }

    #[test]
    fn override_errors_name_the_override() {
        let text = "name = \"x\"\ncount = 3\n";
        let e = parse::<Doc>(text, &["cont=4".into()]).unwrap_err();
        assert!(e.starts_with("--set cont=4: unknown field `cont`"), "{e}");
        let e = parse::<Doc>(text, &["count=abc".into()]).unwrap_err();
        assert!(e.starts_with("--set count=abc: invalid type"), "{e}");
        let e = parse::<Doc>(text, &["count=99999999999999999999999".into()]).unwrap_err();
        assert!(e.contains("does not fit a 64-bit integer"), "{e}");
        assert!(!e.contains("a string"), "{e}");
        let ok = parse::<Doc>(text, &["count=7".into(), "name=y".into()]).unwrap();
        assert_eq!((ok.count, ok.name.as_str()), (Some(7), "y"));
        assert!(parse_override("a..b=1").is_err() && parse_override("novalue").is_err());
    }
}
