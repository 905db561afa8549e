//! One module per command.

mod clean;
mod data;
mod export;
mod exposure;
mod lab;
mod list;
mod model;
mod poison;
mod serve;
mod trap;
mod watermark;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command, TokenizerCommand};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Data(cmd) => data::run(cmd, quiet),
        Command::Tokenizer(TokenizerCommand::Train {
            inputs,
            vocab_size,
            out,
        }) => model::tokenizer_train(&inputs, vocab_size, &out),
        Command::Train {
            stage,
            config,
            overrides,
            resume,
        } => model::train(stage, &config, &overrides, resume, quiet),
        Command::Poison(p) => poison::run(&p, quiet),
        Command::Export(e) => export::run(&e),
        Command::Clean(c) => clean::clean(&c),
        Command::Run(r) => lab::run(&r, quiet),
        Command::Report { run } => lab::report(&run),
        Command::Quickstart { out, dry_run } => lab::quickstart(&out, dry_run, quiet),
        Command::Scan(s) => clean::scan(&s),
        Command::Generate(g) => model::generate(&g),
        Command::Serve(s) => serve::run(&s),
        Command::Score(s) => model::score(&s),
        Command::Watermark(w) => watermark::run(&w),
        Command::Trap(crate::cli::TrapCommand::Make(t)) => trap::make(&t),
        Command::Membership(m) => trap::membership(&m),
        Command::Exposure(e) => exposure::run(&e),
        Command::Fingerprint(f) => watermark::fingerprint(&f),
        Command::List => {
            list::run();
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "poisonlab",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
