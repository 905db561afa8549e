#!/usr/bin/env bash
# Benchmark: `poisonlab scan` with the model-free detectors (onion, salience, consistency, cluster)
# on the medium synthetic world's SFT split poisoned with BadNets at 1 %: MB/s and records/s at 1 and
# 2 threads, peak RSS. (No peer: no Python tool runs these four detectors.)
#
# usage: bench/scan_throughput.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
[ -f "$work/world-medium/sft_train.jsonl" ] || "$bin" --quiet data generate --seed 1 --size medium --out "$work/world-medium"
cat > "$work/scan_bench.toml" <<'TOML'
name = "bench"
seed = 1
[stage]
kind = "sft"
[budget]
rate = 0.01
[trigger]
kind = "badnets"
[payload]
kind = "refusal"
TOML
"$bin" --quiet poison --spec "$work/scan_bench.toml" --input "$work/world-medium/sft_train.jsonl" --output "$work/scan_in.jsonl" > /dev/null
echo "input: $work/scan_in.jsonl ($(wc -l < "$work/scan_in.jsonl") records, $(( $(stat -c %s "$work/scan_in.jsonl") / 1000 )) kB); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for t in 1 2; do
  /usr/bin/time -f "peak RSS %M KB" "$bin" --quiet --threads $t scan "$work/scan_in.jsonl" --output "$work/scan_out.jsonl" 2>&1 | grep -E 'scanned|peak' | sed "s/^/[$t thread(s)] /"
done
