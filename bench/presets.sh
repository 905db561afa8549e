#!/usr/bin/env bash
# Pre-training tokens/s of every model preset (crates/poisonlab-train/src/config.rs, PRESETS) at
# context 128, batch 16, a 4,096-token vocabulary, 1 and 2 threads; 12 steps, the first 4 untimed.
# usage: bench/presets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p poisonlab --quiet
bin=target/release/poisonlab
mkdir -p bench/out
[ -f bench/out/world/pretrain_train.jsonl ] || "$bin" -q data generate --seed 1 --size small --out bench/out/world > /dev/null
[ -f bench/out/tokenizer-4096.json ] || "$bin" -q tokenizer train bench/out/world/pretrain_train.jsonl --vocab-size 4096 --out bench/out/tokenizer-4096.json > /dev/null
for preset in tiny mini small base medium; do
  for threads in 1 2; do
    rm -rf bench/out/train-preset
    "$bin" -q --threads "$threads" train pretrain --config bench/train_bench.toml \
      --set "model.preset=\"$preset\"" --set steps=12 --set warmup_steps=2 \
      --set out=\"bench/out/train-preset\" > bench/out/preset-summary.json
    python3 - "$preset" "$threads" <<'PY'
import json, sys
rows = [json.loads(l) for l in open("bench/out/train-preset/log.jsonl")][4:]
t = open("bench/out/preset-summary.json").read()
s = json.loads(t[t.index("{"):])  # after the one-line header
tps = len(rows) / sum(1 / r["tokens_per_s"] for r in rows)
print(json.dumps({"preset": sys.argv[1], "threads": int(sys.argv[2]), "parameters": s.get("parameters"), "tokens_per_s": round(tps)}))
PY
  done
done
