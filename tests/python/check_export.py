"""Checks a `poisonlab export` folder the way its trainer would read it.

usage: check_export.py DIR TARGET

Every data file is loaded with `datasets.load_dataset` (the loader all three trainers use), its row
count compared with export.json, and each row checked against the target's documented layout:

- llama-factory: dataset_info.json entries use only the keys of LLaMA-Factory's DatasetAttr
  (data/parser.py) and its documented `columns`/`tags`; each row goes through the rules of its
  converters (data/converter.py) — alpaca: a non-empty prompt and a string response (chosen and
  rejected strings with `ranking`); sharegpt: a leading system turn, then turns whose role tag is in
  (user, observation) at even and (assistant, function) at odd positions, an even number of them —
  and must not be one the converter would skip.
- trl: the documented column sets (text; prompt + completion; messages; prompt + chosen +
  rejected), standard (strings) or conversational (lists of {role, content}) with one style per
  file, as trl.data_utils.is_conversational tells them apart.
- axolotl: each `datasets:` entry's path exists, its `type` is one of the strategies the export
  uses, and the fields that strategy reads are in every row.

Prints `ok <file> <rows>` per data file; exits 1 on the first mismatch.
"""

import json
import os
import sys

from datasets import load_dataset

LF_ENTRY_KEYS = {
    "hf_hub_url", "ms_hub_url", "script_url", "file_name", "file_sha1", "subset", "folder",
    "ranking", "formatting", "split", "num_samples", "columns", "tags",
}
LF_COLUMNS = {
    "prompt", "query", "response", "history", "messages", "system", "tools", "images",
    "videos", "audios", "chosen", "rejected", "kto_tag",
}
LF_TAGS = {
    "role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
    "system_tag",
}
# LLaMA-Factory's FILEEXT2TYPE: the file types a local dataset may have.
LF_EXT = {"arrow", "csv", "json", "jsonl", "parquet", "txt"}


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


def load(d, f):
    kind = "parquet" if f.endswith(".parquet") else "json"
    return load_dataset(kind, data_files=os.path.join(d, f), split="train")


def check_llama_factory(d, sets):
    info = json.load(open(os.path.join(d, "dataset_info.json")))
    for s in sets:
        name = s["name"]
        if name not in info:
            fail(f"{name} missing from dataset_info.json")
        e = info[name]
        if set(e) - LF_ENTRY_KEYS:
            fail(f"{name}: unknown keys {set(e) - LF_ENTRY_KEYS}")
        if e["file_name"].rsplit(".", 1)[-1] not in LF_EXT:
            fail(f"{name}: file type not loadable")
        fmt = e.get("formatting", "alpaca")
        if fmt not in ("alpaca", "sharegpt"):
            fail(f"{name}: formatting {fmt}")
        ranking = e.get("ranking", False)
        cols = e.get("columns", {})
        tags = e.get("tags", {})
        if set(cols) - LF_COLUMNS or set(tags) - LF_TAGS:
            fail(f"{name}: unknown columns/tags")
        # DatasetAttr defaults; with a `columns` table, every column is what it says or None
        # (parser.get_dataset_list: set_attr(name, columns) defaults to None).
        attr = {"prompt": "instruction", "query": "input", "response": "output",
                "messages": "conversations", "system": None, "chosen": None, "rejected": None}
        if "columns" in e:
            names = ["system", "tools", "images", "chosen", "rejected", "kto_tag"]
            names += ["prompt", "query", "response", "history"] if fmt == "alpaca" else ["messages"]
            for n in names:
                attr[n] = cols.get(n)
        t = {"role_tag": "from", "content_tag": "value", "user_tag": "human",
             "assistant_tag": "gpt", "observation_tag": "observation",
             "function_tag": "function_call", "system_tag": "system"}
        t.update(tags)
        ds = load(d, e["file_name"])
        if ds.num_rows != s["records"]:
            fail(f"{name}: {ds.num_rows} rows, export.json says {s['records']}")
        for i, ex in enumerate(ds):
            where = f"{name} row {i}"
            if fmt == "alpaca":
                prompt = ex.get(attr["prompt"]) if attr["prompt"] else None
                if not prompt:
                    fail(f"{where}: empty prompt column {attr['prompt']}")
                if attr["query"] and attr["query"] not in ex:
                    fail(f"{where}: no query column")
                if attr["system"] and attr["system"] not in ex:
                    fail(f"{where}: no system column")
                if ranking:
                    if not (isinstance(ex[attr["chosen"]], str) and isinstance(ex[attr["rejected"]], str)):
                        fail(f"{where}: ranking needs chosen/rejected strings")
                elif s["layout"] != "text" and not isinstance(ex.get(attr["response"]), str):
                    fail(f"{where}: no response string")
            else:
                msgs = ex[attr["messages"]]
                if t["system_tag"] and msgs and msgs[0][t["role_tag"]] == t["system_tag"]:
                    msgs = msgs[1:]
                odd = (t["user_tag"], t["observation_tag"])
                even = (t["assistant_tag"], t["function_tag"])
                for j, m in enumerate(msgs):
                    if m[t["role_tag"]] not in (odd, even)[j % 2]:
                        fail(f"{where}: turn {j} role {m[t['role_tag']]} would be skipped")
                    if not isinstance(m[t["content_tag"]], str):
                        fail(f"{where}: turn {j} content")
                if (not ranking and len(msgs) % 2 != 0) or (ranking and len(msgs) % 2 == 0):
                    fail(f"{where}: message count {len(msgs)} would be skipped")
                if not msgs:
                    fail(f"{where}: no turns")
        print("ok", e["file_name"], ds.num_rows)


def conversational(v):
    return isinstance(v, list) and v and isinstance(v[0], dict) and "role" in v[0] and "content" in v[0]


TRL_LAYOUTS = [
    ("text",), ("prompt", "completion"), ("messages",), ("prompt", "chosen", "rejected"),
]


def check_trl(d, sets):
    for s in sets:
        ds = load(d, s["file"])
        if ds.num_rows != s["records"]:
            fail(f"{s['file']}: {ds.num_rows} rows, export.json says {s['records']}")
        cols = set(ds.column_names)
        match = [l for l in TRL_LAYOUTS if set(l) <= cols and not (set(l) == {"prompt", "completion"} and "chosen" in cols)]
        if len(match) != 1:
            fail(f"{s['file']}: columns {sorted(cols)} match {match}")
        keys = match[0]
        styles = set()
        for i, ex in enumerate(ds):
            for k in keys:
                v = ex[k]
                if k == "text":
                    ok = isinstance(v, str) and v
                    styles.add("standard")
                elif conversational(v):
                    ok = all(m["role"] in ("system", "user", "assistant", "tool") and isinstance(m["content"], str) for m in v)
                    styles.add("conversational")
                else:
                    ok = isinstance(v, str)
                    styles.add("standard")
                if not ok:
                    fail(f"{s['file']} row {i}: column {k} = {v!r}")
        if len(styles) != 1:
            fail(f"{s['file']}: mixes standard and conversational rows")
        if keys == ("messages",) and styles != {"conversational"}:
            fail(f"{s['file']}: messages must be conversational")
        print("ok", s["file"], ds.num_rows)


AXOLOTL_FIELDS = {
    "alpaca": ["instruction", "input", "output"],
    "completion": None,  # `field`
    "chat_template": None,  # `field_messages`
    "chat_template.default": None,  # field_messages / field_chosen / field_rejected
}


def check_axolotl(d, sets):
    import yaml

    by_file = {s["file"]: s for s in sets}
    seen = set()
    for yf in ("axolotl.yaml", "axolotl-dpo.yaml"):
        p = os.path.join(d, yf)
        if not os.path.exists(p):
            continue
        cfg = yaml.safe_load(open(p))
        if yf == "axolotl-dpo.yaml" and cfg.get("rl") != "dpo":
            fail("axolotl-dpo.yaml without rl: dpo")
        for e in cfg["datasets"]:
            f = e["path"]
            if f not in by_file:
                fail(f"{yf}: {f} is not an exported file")
            typ = e["type"]
            if typ not in AXOLOTL_FIELDS:
                fail(f"{yf}: type {typ}")
            if e["ds_type"] != ("parquet" if f.endswith(".parquet") else "json"):
                fail(f"{yf}: ds_type {e['ds_type']}")
            ds = load(d, f)
            if ds.num_rows != by_file[f]["records"]:
                fail(f"{f}: row count")
            if typ == "alpaca":
                need = AXOLOTL_FIELDS["alpaca"]
            elif typ == "completion":
                need = [e.get("field", "text")]
            elif typ == "chat_template":
                need = [e.get("field_messages", "messages")]
            else:
                need = [e.get("field_messages", "messages"), e.get("field_chosen", "chosen"), e.get("field_rejected", "rejected")]
            for i, ex in enumerate(ds):
                for k in need:
                    if k not in ex or ex[k] is None:
                        fail(f"{f} row {i}: no {k}")
                if typ == "chat_template":
                    mp = e.get("message_property_mappings", {"role": "role", "content": "content"})
                    for m in ex[need[0]]:
                        if m[mp["role"]] not in ("system", "user", "assistant", "tool"):
                            fail(f"{f} row {i}: role {m[mp['role']]}")
            seen.add(f)
            print("ok", f, ds.num_rows)
    if seen != set(by_file):
        fail(f"files not in any YAML: {set(by_file) - seen}")


def main():
    d, target = sys.argv[1], sys.argv[2]
    exp = json.load(open(os.path.join(d, "export.json")))
    if exp["target"] != target:
        fail(f"export.json target {exp['target']}")
    {"llama-factory": check_llama_factory, "trl": check_trl, "axolotl": check_axolotl}[target](d, exp["sets"])


if __name__ == "__main__":
    main()
