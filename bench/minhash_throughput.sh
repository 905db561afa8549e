#!/usr/bin/env bash
# Benchmark: near-dedup (MinHash + LSH, keep-first, candidates verified by the signature estimate)
# records/s per core — `poisonlab clean` with bench/near_dedup.toml against datasketch
# (bench/minhash_peer.py) on the same documents with the same shingles, permutations, bands × rows.
#
# usage: bench/minhash_throughput.sh [WORKDIR] [N]   (default bench/out, 20000 documents)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench/out}
n=${2:-20000}
mkdir -p "$work"
cargo build --release -p poisonlab --quiet
bin=target/release/poisonlab
python3 -c 'import datasketch' 2>/dev/null || pip install --quiet datasketch
src="$work/world/pretrain_train.jsonl"
[ -f "$src" ] || "$bin" --quiet data generate --seed 1 --size large --out "$work/world"
docs="$work/minhash_${n}.jsonl"
head -n "$n" "$src" > "$docs"
big="$work/minhash_200000.jsonl"
head -n 200000 "$src" > "$big"
echo "documents: $docs ($n docs, $(( $(stat -c %s "$docs") / 1000000 )) MB); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# shingle 5, 128 permutations, 16 bands × 8 rows, Jaccard 0.8 (bench/near_dedup.toml)
ours() {  # ours LABEL THREADS FILE
  local out; out=$(mktemp -d)
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" --quiet --threads "$2" clean --pipeline bench/near_dedup.toml --input "$3" --output "$out/o.jsonl" --json > "$out/r.json"
  t1=$(date +%s.%N)
  python3 - "$1" "$out/r.json" "$t0" "$t1" <<'PY'
import json, sys
label, path, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
r = json.load(open(path))
secs = t1 - t0
print(f"{label:<38} {r['read']:>8} docs {r['kept']:>8} kept {secs:7.2f} s {r['read']/secs:10.0f} docs/s")
PY
  rm -rf "$out"
}
ours "poisonlab, 1 thread" 1 "$docs"
ours "poisonlab, 2 threads" 2 "$docs"
ours "poisonlab, 1 thread, 200k docs" 1 "$big"
ours "poisonlab, 2 threads, 200k docs" 2 "$big"
python3 bench/minhash_peer.py "$docs" "$n" 5 128 16 8 0.8 > "$work/peer.json"
python3 - "$work/peer.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
label = "datasketch, 1 core"
print(f"{label:<38} {r['records']:>8} docs {r['kept']:>8} kept {r['seconds']:7.2f} s {r['records_per_s']:10.0f} docs/s")
PY
