#!/usr/bin/env bash
# Pre-training tokens/s of every model preset (crates/poisonlab-train/src/config.rs, PRESETS) at
# context 128, batch 16, a BPE asked for 4,096 tokens (2,756 reached), 1 and 2 threads; 12 steps,
# the first 4 untimed.
# usage: bench/presets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh bench/out
train_data 4096
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
