#!/usr/bin/env python3
"""Python peer for near-dedup (bench/minhash_throughput.sh): datasketch MinHash + MinHashLSH with the
same word shingles, permutations and bands × rows as `poisonlab clean` near_dedup, keep-first.

usage: minhash_peer.py INPUT N SHINGLE PERMS BANDS ROWS THRESHOLD
Prints JSON: records, kept, seconds, records_per_s.
"""
import json
import sys
import time

from datasketch import MinHash, MinHashLSH


def shingles(text, n):
    words = text.lower().split()
    if not words:
        return []
    if len(words) <= n:
        return [" ".join(words)]
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def main():
    path, limit, n, perms, bands, rows, threshold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
    t0 = time.time()
    lsh = MinHashLSH(threshold=threshold, num_perm=perms, params=(bands, rows))
    kept = 0
    records = 0
    with open(path, "rb") as f:
        for line in f:
            if records >= limit:
                break
            if not line.strip():
                continue
            text = json.loads(line)["text"]
            records += 1
            m = MinHash(num_perm=perms, seed=1)
            for s in shingles(text, n):
                m.update(s.encode("utf-8"))
            dup = False
            for key in lsh.query(m):
                # Verify the candidate by the signature estimate, as poisonlab's verify = "signature".
                if m.jaccard(sigs[key]) >= threshold:
                    dup = True
                    break
            if not dup:
                lsh.insert(records, m)
                sigs[records] = m
                kept += 1
    secs = time.time() - t0
    print(json.dumps({"records": records, "kept": kept, "seconds": secs, "records_per_s": records / secs}))


sigs = {}
if __name__ == "__main__":
    main()
