#!/usr/bin/env bash
# Benchmark: `poisonlab serve` under 8 concurrent loopback clients, 200 completion requests of 16
# tokens, on a model directory (default: the tiny Llama fixture; pass the small-world model to see a
# realistic size). usage: bench/serve_load.sh [MODEL_DIR] [TOKENIZER]
set -euo pipefail
cd "$(dirname "$0")/.."
fix=../shared/fixtures/hf-tiny
model=${1:-$fix/llama}
tok=${2:-}
[ -z "$tok" ] && [ ! -f "$model/tokenizer.json" ] && tok=$fix/tokenizer.json
cargo build --release -p poisonlab --quiet
out=$(mktemp)
target/release/poisonlab -q serve "$model" ${tok:+--tokenizer "$tok"} --port 0 --model-name bench > "$out" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
url=$(awk '{print $3; exit}' "$out")
echo "model: $model; machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 bench/serve_load.py "$url" bench 8 200 16
