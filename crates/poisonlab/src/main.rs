//! The poisonlab command line: a thin layer over the libraries, one module per command.

mod cli;
mod cmd;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    // 0 = one thread per core. Commands run on a pool worker (below), so it gets the main
    // thread's stack size rather than the 2 MiB default.
    let n = cli.global.threads.unwrap_or(0);
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .stack_size(16 << 20)
        .build_global()
    {
        eprintln!("error: cannot set up {n} threads: {e}");
        return ExitCode::from(2);
    }
    // Every command but the server runs on a worker of the global pool: the backend's parallel ops
    // then run inline there instead of being sent across to the pool op by op (which cost the
    // one-thread training step a third of its time). The server stays outside: its request threads
    // use the pool, and one worker blocked in the server would leave a one-thread pool none.
    let result = if matches!(cli.command, cli::Command::Serve(_)) {
        cmd::run(cli)
    } else {
        rayon::scope(|_| cmd::run(cli))
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text the message before it
/// already ends with (our library errors print their OS error, which is also their source).
fn chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("POISONLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_os_error_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(poisonlab_data::Error::io("missing.jsonl".as_ref(), io))
            .context("opening missing.jsonl");
        assert_eq!(
            super::chain(&e),
            "opening missing.jsonl: missing.jsonl: No such file or directory"
        );
    }
}
