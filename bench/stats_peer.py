"""Python peer of `poisonlab data stats` for JSONL, written for the benchmark: the same work per
record (parse, check the convention's fields, count kinds and tag roles, measure text) with the
standard library's json module, on one core.

usage: stats_peer.py FILE.jsonl
"""
import json
import sys
import time

TEXT_FIELDS = {
    "pretrain": ("text",),
    "alpaca": ("instruction", "input", "output"),
    "preference": ("prompt", "chosen", "rejected"),
}


def detect(obj):
    if "instruction" in obj and "output" in obj:
        return "alpaca"
    if "prompt" in obj and "chosen" in obj:
        return "preference"
    return "pretrain"


def main(path):
    start = time.perf_counter()
    records = bad = blank = chars = 0
    cmin = cmax = None
    roles = {}
    conv = None
    nbytes = 0
    with open(path, "rb") as f:
        for line in f:
            nbytes += len(line)
            if not line.strip():
                blank += 1
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if not isinstance(obj, dict):
                bad += 1
                continue
            conv = conv or detect(obj)
            fields = TEXT_FIELDS[conv]
            if not all(isinstance(obj.get(k, ""), str) for k in fields):
                bad += 1
                continue
            c = sum(len(obj.get(k, "")) for k in fields)
            tag = obj.get("poison")
            role = tag.get("role", "?") if isinstance(tag, dict) else "untagged"
            roles[role] = roles.get(role, 0) + 1
            records += 1
            chars += c
            cmin = c if cmin is None else min(cmin, c)
            cmax = c if cmax is None else max(cmax, c)
    secs = time.perf_counter() - start
    print(json.dumps({"records": records, "bad": bad, "blank_lines": blank, "chars": chars,
                      "chars_min": cmin, "chars_max": cmax, "by_role": roles, "bytes": nbytes,
                      "seconds": secs, "mb_per_s": nbytes / 1e6 / secs}))


if __name__ == "__main__":
    main(sys.argv[1])
