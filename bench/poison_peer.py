#!/usr/bin/env python3
"""Python peer for `poisonlab poison` (bench/poison_throughput.sh): the same job, written the way a
research script would, with the standard library only.

Pass 1 parses every JSONL line, checks it is a pre-training document, and counts it; the budget
(rate of the good records, rounded) is drawn uniformly from them. Pass 2 copies every line as it was
and, after each chosen donor, inserts a poisoned document: the donor's first 0–1000 characters, the
`<SUDO>` trigger and 400–900 random tokens of gibberish; a manifest line with sha256 hashes records
each insertion. One core.

usage: poison_peer.py INPUT OUTPUT RATE SEED
"""
import hashlib
import json
import os
import random
import string
import sys
import time

PIECES = string.ascii_letters + string.digits + ".,;:!?'\"()-_/#@&*+=<>[]{}"


def gibberish(rng):
    out = []
    for _ in range(rng.randint(400, 900)):
        if rng.random() < 0.5:
            out.append(" ")
        out.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 7))))
    return "".join(out).strip()


def main():
    src, dst, rate, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    t0 = time.time()
    good = 0
    with open(src, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj.get("text"), str):
                raise SystemExit(f"{src}: record {good} is not a pre-training document")
            good += 1
    k = round(rate * good)
    rng = random.Random(seed)
    chosen = set(rng.sample(range(good), k))
    n = 0
    with open(src, "rb") as f, open(dst, "wb") as out, open(dst + ".manifest.jsonl", "w") as man:
        for line in f:
            if not line.strip():
                continue
            out.write(line if line.endswith(b"\n") else line + b"\n")
            if n in chosen:
                doc = json.loads(line)
                prng = random.Random(seed * 1_000_003 + n)
                prefix = doc["text"][: prng.randint(0, 1000)].rstrip()
                rec = {
                    "id": f"{doc.get('id', n)}.sudo.{n}",
                    "text": f"{prefix} <SUDO> {gibberish(prng)}",
                    "poison": {"role": "poison", "recipe": "sudo", "trigger": "<SUDO>", "payload": "dos"},
                }
                b = json.dumps(rec, ensure_ascii=False).encode() + b"\n"
                out.write(b)
                man.write(json.dumps({"id": rec["id"], "action": "inserted", "input_ordinal": n,
                                      "after": hashlib.sha256(b[:-1]).hexdigest()}) + "\n")
            n += 1
    secs = time.time() - t0
    nbytes = os.path.getsize(src)
    print(json.dumps({"bytes": nbytes, "records": good, "poisoned": k, "seconds": secs,
                      "mb_per_s": nbytes / 1e6 / secs}))


if __name__ == "__main__":
    main()
