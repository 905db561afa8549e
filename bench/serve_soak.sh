#!/usr/bin/env bash
# Soak test: `poisonlab serve` under 16 loopback clients for 10 minutes of mixed completions, chat
# and scoring requests with malformed, oversized and unauthenticated requests mixed in. Bounded in
# time; loopback only. Figures go to BENCHMARKS.md.
# usage: bench/serve_soak.sh [SECONDS=600] [CLIENTS=16] [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
clients=${2:-16}
fix=../shared/fixtures/hf-tiny
model=${3:-$fix/llama}
# POISONLAB_BIN runs another build (e.g. target/debug/poisonlab, whose dependencies are optimized).
bin=${POISONLAB_BIN:-}
if [ -z "$bin" ]; then cargo build --release -p poisonlab --quiet; bin=target/release/poisonlab; fi
out=$(mktemp)
export POISONLAB_SOAK_KEY=sk-soak-$RANDOM$RANDOM
"$bin" -q serve "$model" --tokenizer $fix/tokenizer.json --port 0 --model-name soak \
  --api-key-env POISONLAB_SOAK_KEY --parallel 2 --max-queue 8 --request-timeout 30 > "$out" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
url=$(awk '{print $3; exit}' "$out")
echo "model: $model; machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 bench/serve_soak.py "$url" soak "$POISONLAB_SOAK_KEY" "$pid" "$clients" "$secs"
