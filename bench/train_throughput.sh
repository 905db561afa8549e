#!/usr/bin/env bash
# Benchmark: pre-training tokens/s and MFU, poisonlab (burn, flex CPU backend) against the PyTorch
# eager peer bench/train_peer.py, for two models at 1 and 2 threads, interleaved (ours, then the
# peer, row by row) so that both see the same machine:
#   bench  — bench/train_bench.toml: 4 layers, d=256, ctx 128, batch 16, BPE asked for 4096 tokens
#   quick  — bench/train_quickstart.toml: the quick start's model, 2 layers, d=64, ctx 64, 1024 vocab
# The peer is given the vocabulary our tokenizer reached, so that both models have the same size.
# Needs python3 with torch. usage: bench/train_throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh bench/out
train_data 4096
train_data 1024
cargo build --release -p poisonlab-model --example matmul_peak --quiet
for threads in 1 2; do target/release/examples/matmul_peak "$threads"; done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
run() { # name config steps peer-shape-without-vocabulary threads
  local out
  out=bench/out/$(grep '^out' "bench/$2" | cut -d'"' -f2 | sed 's|^out/||')
  rm -rf "$out"
  "$bin" -q --threads "$5" train pretrain --config "bench/$2" > /dev/null
  python3 - "$1" "$5" "$out/log.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[3])][5:]
tps = len(rows) / sum(1 / r["tokens_per_s"] for r in rows)  # harmonic mean = total tokens / total time
print(json.dumps({"impl": "poisonlab-burn-flex", "model": sys.argv[1], "threads": int(sys.argv[2]),
                  "tokens_per_s": tps, "final_loss": rows[-1]["loss"]}))
PY
  # The peer gets our model's vocabulary (the BPE may stop short of the size asked for).
  python3 bench/train_peer.py "$5" "$3" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$out/model/config.json"),$4"
}
for threads in 1 2; do
  run bench train_bench.toml 30 256,4,4,688,128,16 "$threads"
  run quick train_quickstart.toml 200 64,2,2,172,64,16 "$threads"
done
