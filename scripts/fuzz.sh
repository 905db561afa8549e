#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, the nightly toolchain) of every reader and the
# files people write: data files in every format and compression, every convention, poison specs,
# cleaning pipelines, experiments, model configs, chat templates, safetensors and the server's
# request bodies. Seeds are made here from the synthetic world, the examples and ../shared (never
# committed); a crash is fixed and its input kept as an ordinary regression test. Prints, per target: runs, coverage, corpus, crashes.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET=180] [SHARED_DIR=../shared]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
shared=${2:-../shared}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo build -p poisonlab --quiet
bin=target/debug/poisonlab
cargo +nightly fuzz build -O

c=fuzz/corpus
mkdir -p $c/data_file $c/conventions $c/toml_files $c/model_files $c/server_bodies
tmp=$(mktemp -d)
"$bin" --quiet data generate --seed 1 --size small --out "$tmp/world" > /dev/null
# data_file: one selector byte (0 jsonl, 1 json, 2 tsv, 3 txt, 4 parquet, 5 jsonl.gz, 6 jsonl.zst,
# 7 arrow)
# then the file.
seed() { { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$c/data_file/$3"; }
i=0
for f in "$tmp"/world/*.jsonl; do
  head -n 5 "$f" > "$tmp/s.jsonl"
  seed 0 "$tmp/s.jsonl" "w$i.jsonl"
  "$bin" --quiet data convert "$tmp/s.jsonl" "$tmp/s$i.parquet" > /dev/null && seed 4 "$tmp/s$i.parquet" "w$i.parquet"
  "$bin" --quiet data convert "$tmp/s.jsonl" "$tmp/s$i.json" > /dev/null && seed 1 "$tmp/s$i.json" "w$i.json"
  head -n 1 "$f" > "$c/conventions/w$i.json"
  i=$((i + 1))
done
"$bin" --quiet data convert "$tmp/s.jsonl" "$tmp/s.jsonl.gz" > /dev/null && seed 5 "$tmp/s.jsonl.gz" gz
"$bin" --quiet data convert "$tmp/s.jsonl" "$tmp/s.jsonl.zst" > /dev/null && seed 6 "$tmp/s.jsonl.zst" zst
head -n 6 "$(ls "$shared"/data/sst2/*.tsv | head -1)" > "$tmp/s.tsv" 2>/dev/null && seed 2 "$tmp/s.tsv" sst2.tsv || true
head -c 2000 "$tmp/world/pretrain_train.jsonl" | cut -c1-200 > "$tmp/s.txt"; seed 3 "$tmp/s.txt" text.txt
# Arrow IPC (selector 7): a stream and a file as pyarrow (and `datasets` save_to_disk) write them.
python3 - "$c/data_file" <<'PY' || echo "no pyarrow: no Arrow seeds"
import io, sys
import pyarrow as pa, pyarrow.ipc as ipc
t = pa.table({"instruction": ["Name a river.", "Add 2 and 3."], "input": ["", ""], "output": ["The Nile.", "5"]})
for name, new in [("stream", ipc.new_stream), ("file", ipc.new_file)]:
    b = io.BytesIO(); w = new(b, t.schema); w.write_table(t); w.close()
    open(f"{sys.argv[1]}/arrow_{name}", "wb").write(b"\x07" + b.getvalue())
PY
for f in examples/poison/*.toml; do { printf '\x00'; cat "$f"; } > "$c/toml_files/p-$(basename "$f")"; done
for f in examples/clean/*.toml; do { printf '\x01'; cat "$f"; } > "$c/toml_files/c-$(basename "$f")"; done
for f in experiments/*.toml; do { printf '\x02'; cat "$f"; } > "$c/toml_files/e-$(basename "$f")"; done
for m in llama qwen2 gpt2; do
  { printf '\x00'; cat "$shared/fixtures/hf-tiny/$m/config.json"; } > "$c/model_files/cfg-$m"
  { printf '\x02'; head -c 4096 "$shared/fixtures/hf-tiny/$m/model.safetensors"; } > "$c/model_files/st-$m"
done
printf '\x01{%% for m in messages %%}<|{{ m.role }}|>\n{{ m.content }}{%% endfor %%}{{ eos_token }}\x00be brief\x01hi' > "$c/model_files/tpl"
printf '\x00{"model": "m", "prompt": ["a", "b"], "max_tokens": 4, "stop": "x", "logprobs": 2, "stream": true}' > "$c/server_bodies/completion"
printf '\x01{"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "n": 2, "top_logprobs": 3}' > "$c/server_bodies/chat"
rm -rf "$tmp"

for t in data_file conventions toml_files model_files server_bodies; do
  log=fuzz/$t.log
  set +e
  cargo +nightly fuzz run -O "$t" "$c/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20 \
    -print_final_stats=1 > "$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/.* cov: ([0-9]+).*/\1/')
  crashes=$(ls fuzz/artifacts/$t 2>/dev/null | wc -l)
  echo "$t: ${runs:-?} runs in ${secs}s, coverage ${cov:-?} edges, corpus $(ls $c/$t | wc -l), crashes $crashes (exit $rc)"
done
