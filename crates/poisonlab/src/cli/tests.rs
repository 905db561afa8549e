use super::*;
use clap::CommandFactory;

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

/// Every argument of every command says what it is, and help names only files that exist.
#[test]
fn every_argument_is_described_and_named_files_exist() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>, texts: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            match a.get_help() {
                Some(h) => texts.push(h.to_string()),
                None => missing.push(format!("{path} {id}")),
            }
        }
        if let Some(a) = cmd.get_about() {
            texts.push(a.to_string());
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing, texts);
        }
    }
    let (mut missing, mut texts) = (Vec::new(), Vec::new());
    walk(&Cli::command(), "poisonlab", &mut missing, &mut texts);
    assert!(
        missing.is_empty(),
        "arguments without a description: {missing:#?}"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for t in &texts {
        for part in t.split('`').skip(1).step_by(2) {
            let p = part.split_whitespace().next().unwrap_or("");
            if ["examples/", "experiments/", "docs/", "bench/"]
                .iter()
                .any(|d| p.starts_with(d))
            {
                assert!(
                    root.join(p).exists(),
                    "help names `{p}`, which does not exist"
                );
            }
        }
    }
}

#[test]
fn unknown_convention_names_the_choices() {
    let err = parse_convention("alpacka").unwrap_err();
    assert!(err.contains("alpaca") && err.contains("sharegpt"), "{err}");
}
