"""Bounded loopback load on `poisonlab serve`: C concurrent clients send N completion requests in
all (standard library only). Prints requests/s, p50/p99 latency and the error count as JSON.

usage: serve_load.py BASE_URL MODEL [CLIENTS=8] [REQUESTS=200] [MAX_TOKENS=16]
"""
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def one(url, model, i, max_tokens):
    body = json.dumps({"model": model, "prompt": f"Request {i}: the model learns", "max_tokens": max_tokens,
                       "temperature": 0, "logprobs": 0}).encode()
    req = urllib.request.Request(f"{url}/completions", data=body, headers={"content-type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            ok = r.status == 200 and json.load(r)["choices"][0]["text"] is not None
    except Exception:
        ok = False
    return time.perf_counter() - start, ok


def main(url, model, clients=8, requests=200, max_tokens=16):
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda i: one(url, model, i, max_tokens), range(requests)))
    wall = time.perf_counter() - start
    lat = sorted(r[0] for r in results)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(json.dumps({"clients": clients, "requests": requests, "max_tokens": max_tokens,
                      "answered": sum(r[1] for r in results), "errors": sum(not r[1] for r in results),
                      "requests_per_s": requests / wall, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                      "wall_s": wall}))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], *(int(x) for x in a[2:]))
