#!/usr/bin/env bash
# Benchmark: `poisonlab data stats` over generated JSONL of ~1 GB and ~2 GB (MB/s, peak RSS), and
# the Python peer (bench/stats_peer.py) on the same 1 GB file in the same run.
#
# usage: bench/stats_throughput.sh [WORKDIR]   (needs ~4 GB of disk; default bench/out)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

if [ ! -f "$work/world/pretrain_train.jsonl" ]; then
  /usr/bin/time -f 'generate large: %e s wall, %M KB peak RSS' \
    "$bin" --quiet data generate --seed 1 --size large --out "$work/world"
fi
src="$work/world/pretrain_train.jsonl"
src_mb=$(( $(stat -c %s "$src") / 1000000 ))
# Concatenate copies: ids repeat, which stats does not mind.
for target in 1000 2000; do
  f="$work/stats_${target}mb.jsonl"
  if [ ! -f "$f" ]; then
    : > "$f"
    while [ $(( $(stat -c %s "$f") / 1000000 )) -lt "$target" ]; do cat "$src" >> "$f"; done
  fi
done
echo "source: $src (${src_mb} MB); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

run() {  # run LABEL CMD...: prints MB/s from the tool's JSON and peak RSS from GNU time
  local label=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -f '%M' -o "$log" "$@" > "$log.out"
  local rss_kb; rss_kb=$(tail -n1 "$log")
  python3 - "$label" "$log.out" "$rss_kb" <<'PY'
import json, sys
label, out, rss = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = json.load(open(out))
print(f"{label:<34} {d['bytes']/1e6:8.0f} MB {d['records']:>11} records {d['seconds']:7.2f} s "
      f"{d['mb_per_s']:7.1f} MB/s  peak RSS {rss/1024:6.1f} MB")
PY
  rm -f "$log" "$log.out"
}

# Warm the page cache so both tools read from memory.
cat "$work/stats_1000mb.jsonl" > /dev/null
run "poisonlab stats 1 GB, 2 threads" "$bin" --quiet --threads 2 data stats --json "$work/stats_1000mb.jsonl"
run "poisonlab stats 1 GB, 1 thread" "$bin" --quiet --threads 1 data stats --json "$work/stats_1000mb.jsonl"
cat "$work/stats_2000mb.jsonl" > /dev/null
run "poisonlab stats 2 GB, 2 threads" "$bin" --quiet --threads 2 data stats --json "$work/stats_2000mb.jsonl"
run "python peer (json, 1 core) 1 GB" python3 bench/stats_peer.py "$work/stats_1000mb.jsonl"
