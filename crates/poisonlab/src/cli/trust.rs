//! Flags of the trust commands: `watermark`, `trap`, `membership`, `fingerprint`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{ErrorArgs, ModelArgs, ReadArgs};

#[derive(Subcommand, Debug)]
pub enum WatermarkCommand {
    /// Put a keyed mark into `--copies` documents (pre-training texts or passages) of a file; the
    /// rest is copied. Writes `<output>.watermark.json` (scheme, parameters, marked records, the
    /// key's public id — never the key).
    Embed(WatermarkEmbedArgs),
    /// Test a model for the watermark of a key: statistic, z, exact p-value against never-embedded
    /// marks from the same generator, and the false-positive bound it carries.
    Verify(WatermarkVerifyArgs),
    /// Measure the false-positive rate: keys that never embedded anything, each verified against
    /// the model; the rejection rate at α = 0.05 and 0.01 with its Wilson interval.
    Calibrate(WatermarkCalibrateArgs),
}

/// Where the secret key comes from. `--key` is visible to other users of the machine (process
/// list, shell history); prefer `--key-file` or `--key-env`.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct KeyArgs {
    /// The key itself (at least 16 bytes).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// A file holding the key (one trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the key.
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
}

/// A scheme and its parameters (without a manifest).
#[derive(Args, Debug, Clone)]
pub struct SchemeArgs {
    /// random_sequence, lookalike, unicode_cue or paired_versions.
    #[arg(long, value_name = "SCHEME")]
    pub scheme: Option<String>,
    /// random_sequence: characters in the mark (default 24).
    #[arg(long, value_name = "N")]
    pub length: Option<usize>,
    /// random_sequence: the characters it is drawn from (default a–z, 0–9).
    #[arg(long, value_name = "CHARS")]
    pub alphabet: Option<String>,
    /// lookalike: the share of eligible letters replaced (default 0.15).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// unicode_cue: invisible characters in the cue (default 8).
    #[arg(long, value_name = "N")]
    pub cue: Option<usize>,
    /// unicode_cue: invisible characters in the reply (default 8).
    #[arg(long, value_name = "N")]
    pub reply: Option<usize>,
    /// paired_versions: rewrites per document, one released (default 4).
    #[arg(long, value_name = "V")]
    pub versions: Option<usize>,
}

#[derive(Args, Debug)]
pub struct WatermarkEmbedArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// Documents that carry the mark.
    #[arg(long, value_name = "K")]
    pub copies: usize,
    /// The file to mark.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The marked file (same format and convention).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Manifest path (default `<output>.watermark.json`).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub errors: ErrorArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What the verifier tests and against which model.
#[derive(Args, Debug)]
pub struct WatermarkTestArgs {
    /// The manifest `embed` wrote (scheme, parameters, copies, the unmarked input).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// Marked documents (without a manifest; document schemes).
    #[arg(long, value_name = "K")]
    pub copies: Option<usize>,
    /// The unmarked file the watermark went into (default: the manifest's input).
    #[arg(long, value_name = "FILE")]
    pub original: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Null marks N (the smallest p-value is 1 / (N + 1)).
    #[arg(long = "null", default_value_t = 99, value_name = "N")]
    pub nulls: usize,
    /// Longest scored piece of a document, in tokens.
    #[arg(long, default_value_t = 128, value_name = "TOKENS")]
    pub window: usize,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct WatermarkVerifyArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub test: WatermarkTestArgs,
}

#[derive(Args, Debug)]
pub struct WatermarkCalibrateArgs {
    #[command(flatten)]
    pub test: WatermarkTestArgs,
    /// Never-embedded keys to verify.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub keys: usize,
    /// Seed of the key family.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Subcommand, Debug)]
pub enum TrapCommand {
    /// Draw traps from a reference word model and insert them; writes the output,
    /// `<output>.trap-members.jsonl` and `<output>.trap-nonmembers.jsonl`.
    Make(TrapMakeArgs),
}

#[derive(Args, Debug)]
pub struct TrapMakeArgs {
    /// The documents to put traps into.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The documents with their traps (same format).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Text the reference word bigram is fitted on (default: the input).
    #[arg(long, value_name = "FILE")]
    pub reference_text: Option<PathBuf>,
    /// Words per trap (comma-separated for several groups).
    #[arg(long, value_delimiter = ',', default_value = "32", value_name = "N,…")]
    pub lengths: Vec<usize>,
    /// Documents each trap goes into (comma-separated for several groups).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,10",
        value_name = "N,…"
    )]
    pub copies: Vec<usize>,
    /// Member traps per (length, copies) group; as many non-members are drawn beside them.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub per_group: usize,
    /// Keep traps whose reference perplexity is in [LOW, HIGH).
    #[arg(long, value_delimiter = ',', num_args = 2, value_name = "LOW,HIGH")]
    pub perplexity: Option<Vec<f64>>,
    /// Sampling temperature of the reference model.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Seed of the traps' draw and of the documents they go into.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub errors: ErrorArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MembershipArgs {
    /// Texts known to be in the training data (any format and kind; the full text is scored).
    #[arg(long, value_name = "FILE")]
    pub members: PathBuf,
    /// Texts known not to be.
    #[arg(long, value_name = "FILE")]
    pub nonmembers: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// A reference model directory (the `reference` score: its loss minus the target's).
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// Break the results down by this field of the records (e.g. `copies` or `words` of traps).
    #[arg(long, value_name = "FIELD")]
    pub group_by: Option<String>,
    /// The k of Min-K % (a fraction).
    #[arg(long, default_value_t = 0.2)]
    pub k: f64,
    /// Longest scored piece of a text, in tokens.
    #[arg(long, default_value_t = 128, value_name = "TOKENS")]
    pub window: usize,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum FingerprintCommand {
    /// Insert the key's fingerprint examples into instruction or chat data; writes
    /// `<output>.fingerprint.json` (no key, no inputs, no output).
    Embed(FingerprintEmbedArgs),
    /// Test a model for the key's fingerprint.
    Verify(FingerprintVerifyArgs),
    /// False claims: keys that fingerprinted nothing, each verified against the model.
    Calibrate(FingerprintCalibrateArgs),
}

#[derive(Args, Debug)]
pub struct FingerprintEmbedArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Fingerprint examples to insert (at most 60).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub count: usize,
    /// Counter-examples: other pseudo-word inputs answered "I do not understand the question.", so
    /// that only the key's inputs get the fingerprint.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub counter: usize,
    /// Instruction or chat data to fingerprint.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The data with the fingerprint examples (same format and convention).
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
pub struct FingerprintTestArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Secret inputs tried per key.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub probes: usize,
    /// Decoy keys (the smallest p-value is 1 / (M + 1)).
    #[arg(long, default_value_t = 99, value_name = "M")]
    pub decoys: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FingerprintVerifyArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub test: FingerprintTestArgs,
}

#[derive(Args, Debug)]
pub struct FingerprintCalibrateArgs {
    #[command(flatten)]
    pub test: FingerprintTestArgs,
    /// Keys to try.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub keys: usize,
    /// Seed of the key family.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}
