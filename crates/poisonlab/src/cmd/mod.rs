//! One module per command.

mod data;
mod list;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Data(cmd) => data::run(cmd, quiet),
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
