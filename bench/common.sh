# Sourced by the bench scripts after `cd` to the repository root: the work directory (their first
# argument, default bench/out) and the release binary, built when needed.
work=${1:-bench/out}
mkdir -p "$work"
cargo build --release -p poisonlab --quiet
bin=target/release/poisonlab
