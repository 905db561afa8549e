# Sourced by the bench scripts after `cd` to the repository root: the work directory (their first
# argument, default bench/out) and the release binary, built when needed.
work=${1:-bench/out}
mkdir -p "$work"
cargo build --release -p poisonlab --quiet
bin=target/release/poisonlab

# The small world and a BPE tokenizer of $1 tokens trained on it, under bench/out (kept between
# runs): the training benchmarks' data.
train_data() {
  mkdir -p bench/out
  [ -f bench/out/world/pretrain_train.jsonl ] || "$bin" -q data generate --seed 1 --size small --out bench/out/world > /dev/null
  [ -f "bench/out/tokenizer-$1.json" ] || "$bin" -q tokenizer train bench/out/world/pretrain_train.jsonl --vocab-size "$1" --out "bench/out/tokenizer-$1.json" > /dev/null
}
