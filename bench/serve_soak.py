"""Soak load for `poisonlab serve`: N loopback clients send a mix of completions, chat and scoring
(echo + logprobs) requests for a bounded time, with malformed, oversized and unauthenticated
requests mixed in. Valid requests must all succeed (a 429 from the bounded queue is retried after
its Retry-After and counted apart); bad ones must get a 4xx. Prints p50/p99 latency of valid
requests and the server's RSS over time.

usage: serve_soak.py BASE_URL MODEL KEY PID CLIENTS SECONDS
"""
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def call(url, body, key, timeout=60):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status, None
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Retry-After")
    except (urllib.error.URLError, ConnectionError, OSError):
        # The server answered before the body was sent (413 on an oversized body) and closed the
        # connection: the client sees a broken pipe. 0 = no status.
        return 0, None


def main(base, model, key, pid, clients, seconds):
    stop = time.time() + seconds
    lock = threading.Lock()
    stats = {"ok": 0, "failed": 0, "busy": 0, "bad_ok": 0, "bad_refused": 0, "lat": []}
    prompts = ["The model learns", "A fox jumps over", "Poison hides in", "The river town"]

    def valid(rng):
        k = rng.random()
        if k < 0.4:
            return f"{base}/completions", {"model": model, "prompt": rng.choice(prompts), "max_tokens": 16, "temperature": 0}
        if k < 0.7:
            return f"{base}/chat/completions", {"model": model, "messages": [{"role": "user", "content": rng.choice(prompts)}], "max_tokens": 16}
        return f"{base}/completions", {"model": model, "prompt": [p + " data." for p in prompts], "max_tokens": 0, "echo": True, "logprobs": 0}

    def bad(rng):
        k = rng.random()
        if k < 0.25:
            return f"{base}/completions", b'{"model": "x", "prompt": ', key  # truncated JSON
        if k < 0.5:
            return f"{base}/completions", {"model": model, "prompt": "x" * (2 << 20)}, key  # oversized
        if k < 0.75:
            return f"{base}/completions", {"model": model, "prompt": "hi", "max_tokens": 10**6}, key
        return f"{base}/completions", {"model": model, "prompt": "hi"}, "sk-wrong"

    def client(i):
        rng = random.Random(i)
        while time.time() < stop:
            if rng.random() < 0.1:
                url, body, k = bad(rng)
                status, _ = call(url, body, k)
                with lock:
                    # Refused: a 4xx, or the connection closed on an oversized upload.
                    stats["bad_refused" if status == 0 or 400 <= status < 500 else "bad_ok"] += 1
                continue
            url, body = valid(rng)
            t0 = time.time()
            while True:
                status, retry = call(url, body, key)
                if status == 429:
                    with lock:
                        stats["busy"] += 1
                    time.sleep(float(retry or 1))
                    continue
                break
            with lock:
                if status == 200:
                    stats["ok"] += 1
                    stats["lat"].append(time.time() - t0)
                else:
                    stats["failed"] += 1

    rss = []
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start = time.time()
    while any(t.is_alive() for t in threads):
        rss.append((time.time() - start, rss_kb(pid)))
        time.sleep(5)
    lat = sorted(stats["lat"])
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    first = [r for t, r in rss if t < 60]
    last = [r for t, r in rss if t >= seconds - 60]
    print(json.dumps({
        "clients": clients, "seconds": seconds,
        "valid_ok": stats["ok"], "valid_failed": stats["failed"], "retried_429": stats["busy"],
        "bad_refused_4xx": stats["bad_refused"], "bad_accepted": stats["bad_ok"],
        "p50_ms": round(q(0.5), 1), "p99_ms": round(q(0.99), 1),
        "rss_mb_first_minute_max": round(max(first) / 1024, 1) if first else None,
        "rss_mb_last_minute_max": round(max(last) / 1024, 1) if last else None,
    }))
    return 0 if stats["failed"] == 0 and stats["bad_ok"] == 0 else 1


if __name__ == "__main__":
    a = sys.argv
    sys.exit(main(a[1], a[2], a[3], int(a[4]), int(a[5]), int(a[6])))
