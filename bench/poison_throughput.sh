#!/usr/bin/env bash
# Benchmark: `poisonlab poison` on a ~1 GB pre-training JSONL at a 0.01 % budget (MB/s of input,
# peak RSS), and the Python peer (bench/poison_peer.py) doing the same job in the same run.
#
# usage: bench/poison_throughput.sh [WORKDIR]   (reuses the 1 GB file of stats_throughput.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
src="$work/stats_1000mb.jsonl"
if [ ! -f "$src" ]; then
  [ -f "$work/world/pretrain_train.jsonl" ] || "$bin" --quiet data generate --seed 1 --size large --out "$work/world"
  : > "$src"
  while [ $(( $(stat -c %s "$src") / 1000000 )) -lt 1000 ]; do cat "$work/world/pretrain_train.jsonl" >> "$src"; done
fi
echo "input: $src ($(( $(stat -c %s "$src") / 1000000 )) MB); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cat "$src" > /dev/null

run() {  # run LABEL OUT CMD...: wall time and peak RSS from GNU time
  local label=$1 out=$2; shift 2
  local log; log=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$log" "$@" > /dev/null
  read -r secs rss_kb < "$log"
  python3 - "$label" "$src" "$out" "$secs" "$rss_kb" <<'PY'
import os, sys
label, src, out, secs, rss = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
mb = os.path.getsize(src) / 1e6
man = sum(1 for _ in open(out + ".manifest.jsonl"))
print(f"{label:<32} {mb:7.0f} MB in {secs:6.2f} s  {mb/secs:7.1f} MB/s  peak RSS {rss/1024:6.1f} MB  {man} poisoned")
PY
  rm -f "$log"
}

run "poisonlab poison, 2 threads" "$work/poisoned.jsonl" \
  "$bin" --quiet --threads 2 poison --spec bench/poison_bench.toml --input "$src" --output "$work/poisoned.jsonl"
run "poisonlab poison, 1 thread" "$work/poisoned1.jsonl" \
  "$bin" --quiet --threads 1 poison --spec bench/poison_bench.toml --input "$src" --output "$work/poisoned1.jsonl"
cmp "$work/poisoned.jsonl" "$work/poisoned1.jsonl" && echo "1 and 2 threads: byte-identical output"
run "python peer, 1 core" "$work/peer.jsonl" python3 bench/poison_peer.py "$src" "$work/peer.jsonl" 0.0001 1
rm -f "$work/poisoned1.jsonl"*
