#!/usr/bin/env bash
# Benchmark: pre-training tokens/s and MFU of the 4-layer d=256 ctx-128 batch-16 model, poisonlab
# (burn, flex CPU backend) against the PyTorch eager peer bench/train_peer.py, 1 and 2 threads each.
# Needs python3 with torch. usage: bench/train_throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p poisonlab --quiet
bin=target/release/poisonlab
mkdir -p bench/out
[ -f bench/out/world/pretrain_train.jsonl ] || "$bin" -q data generate --seed 1 --size small --out bench/out/world > /dev/null
[ -f bench/out/tokenizer.json ] || "$bin" -q tokenizer train bench/out/world/pretrain_train.jsonl --vocab-size 4096 --out bench/out/tokenizer.json > /dev/null
cargo build --release -p poisonlab-model --example matmul_peak --quiet
for threads in 1 2; do target/release/examples/matmul_peak "$threads"; done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for threads in 1 2; do
  rm -rf bench/out/train-bench
  "$bin" -q --threads "$threads" train pretrain --config bench/train_bench.toml > /dev/null
  python3 - "$threads" <<'PY'
import json, sys
rows = [json.loads(l) for l in open("bench/out/train-bench/log.jsonl")][5:]
tps = len(rows) / sum(1 / r["tokens_per_s"] for r in rows)  # harmonic mean = total tokens / total time
print(json.dumps({"impl": "poisonlab-burn-flex", "threads": int(sys.argv[1]), "tokens_per_s": tps, "final_loss": rows[-1]["loss"]}))
PY
  python3 bench/train_peer.py "$threads" 30
done
