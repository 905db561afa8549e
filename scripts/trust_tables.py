#!/usr/bin/env python3
"""Markdown tables of the trust experiments' results (docs/trust.md), from their run directories.

    python3 scripts/trust_tables.py [RUNS_DIR]   # default runs/

Rates are pooled over seeds (k and n summed) with a Wilson interval; per-seed values follow, so the
spread between seeds is visible. Only the standard library.
"""
import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def wilson(k, n, z=1.959964):
    if n == 0:
        return 0.0, 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return p, max(0.0, c - h), min(1.0, c + h)


def rate(k, n):
    p, lo, hi = wilson(k, n)
    return f"{k}/{n} = {100 * p:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"


def rows(run):
    path = run / "results.jsonl"
    if not path.exists():
        return None
    return [json.loads(line) for line in path.open()]


def pooled(rs, key):
    """{key(row): (k, n, [per-seed k/n])} for rate rows."""
    out = defaultdict(lambda: [0, 0, []])
    for r in rs:
        if r.get("k") is None:
            continue
        g = out[key(r)]
        g[0] += r["k"]
        g[1] += r["n"]
        g[2].append((r["seed"], r["k"], r["n"]))
    return out


def per_seed(g):
    return ", ".join(f"{k}" for _, k, _ in sorted(g[2]))


def watermark(runs):
    rs = rows(runs / "trust-watermark")
    if rs is None:
        return
    print("### `watermark.toml`\n")
    print("| scheme | K = 1 | K = 2 | K = 4 | K = 8 | FPR at α = 0.05 | FPR at α = 0.01 |")
    print("|---|---|---|---|---|---|---|")
    g = pooled(rs, lambda r: (r["watermark_scheme"], r["probe"]))
    for s in ["random_sequence", "lookalike", "unicode_cue", "paired_versions"]:
        cells = []
        for p in [f"watermark_detected/copies={k}" for k in (1, 2, 4, 8)] + [
            "watermark_fpr/alpha=0.05",
            "watermark_fpr/alpha=0.01",
        ]:
            x = g.get((s, p))
            cells.append(f"{rate(x[0], x[1])} ({per_seed(x)})" if x else "–")
        print(f"| `{s}` | " + " | ".join(cells) + " |")
    print()


def scale(runs):
    rs = rows(runs / "trust-watermark-scale")
    if rs is None:
        return
    print("### `watermark_scale.toml`\n")
    print("| model | documents | detected at K = 2 | detected at K = 8 | mean z at K = 2 | mean z at K = 8 | FPR at 0.05 |")
    print("|---|---|---|---|---|---|---|")
    key = lambda r: (r["stage_0_config_model_preset"], r["stage_0_config_max_records"], r["probe"])
    g = pooled(rs, key)
    z = defaultdict(list)
    for r in rs:
        if r["probe"].startswith("watermark_z"):
            z[key(r)].append(r["value"])
    for m in ["tiny", "mini"]:
        for d in [1500, 6000, 12000]:
            c = []
            for k in (2, 8):
                x = g.get((m, d, f"watermark_detected/copies={k}"))
                c.append(f"{rate(x[0], x[1])} ({per_seed(x)})" if x else "–")
            for k in (2, 8):
                v = z.get((m, d, f"watermark_z/copies={k}"), [])
                c.append(" / ".join(f"{x:.2f}" for x in v) if v else "–")
            x = g.get((m, d, "watermark_fpr/alpha=0.05"))
            c.append(rate(x[0], x[1]) if x else "–")
            print(f"| {m} | {d} | " + " | ".join(c) + " |")
    print()


def traps(runs):
    rs = rows(runs / "trust-traps")
    if rs is None:
        return
    print("### `traps.toml` (AUROC per seed; mean over seeds)\n")
    by = defaultdict(list)
    for r in rs:
        if r["probe"].startswith("membership_auroc/"):
            by[r["probe"].split("/", 1)[1]].append(r["value"])
    scores = ["loss", "zlib", "min_k", "min_k_plus_plus"]
    print("| words | copies | " + " | ".join(scores) + " |")
    print("|---|---|" + "---|" * len(scores))
    for w in (16, 32, 64):
        for c in (1, 4, 16):
            cells = []
            for s in scores:
                v = by.get(f"{s}/words={w}/copies={c}", [])
                cells.append(
                    f"{sum(v) / len(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})" if v else "–"
                )
            print(f"| {w} | {c} | " + " | ".join(cells) + " |")
    print()


def fingerprint(runs):
    rs = rows(runs / "trust-fingerprint")
    if rs is None:
        return
    print("### `fingerprint.toml`\n")
    print("| counter-examples | after | downstream lr | success (per seed) | near misses | verified at α = 0.05 | p per seed | false claims at 0.05 | at 0.01 | utility |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    lr = lambda r: r.get("stage_2_config_lr", 0.002)
    ce = lambda r: r.get("fingerprint_counter", 0)
    g = pooled(rs, lambda r: (ce(r), r["stage"], lr(r), r["probe"]))
    p = defaultdict(list)
    for r in rs:
        if r["probe"] == "fingerprint_p":
            p[(ce(r), r["stage"], lr(r))].append((r["seed"], r["value"]))
    lrs = sorted({lr(r) for r in rs}, reverse=True)
    for c0 in sorted({ce(r) for r in rs}):
        for st in ["pretrain", "sft", "sft/cot"]:
            # Before the downstream stage the cells of every learning rate share their models.
            for l in lrs if st == "sft/cot" else lrs[:1]:
                c = []
                for pr in ["fingerprint_success", "fingerprint_near_miss", "fingerprint_verified"]:
                    x = g.get((c0, st, l, pr))
                    c.append(f"{rate(x[0], x[1])} ({per_seed(x)})" if x else "–")
                c.append(", ".join(f"{v:.2f}" for _, v in sorted(p[(c0, st, l)])))
                for pr in ["fingerprint_false_claims/alpha=0.05", "fingerprint_false_claims/alpha=0.01", "utility"]:
                    x = g.get((c0, st, l, pr))
                    c.append(rate(x[0], x[1]) if x else "–")
                lab = l if st == "sft/cot" else "–"
                print(f"| {c0} | {st} | {lab} | " + " | ".join(c) + " |")
    print()


def backdoor_align(runs):
    rs = rows(runs / "trust-backdoor-align")
    if rs is None:
        return
    print("### `backdoor_align.toml` (after the harmful fine-tune)\n")
    print("| benign examples | safety examples | harmful, plain | harmful, with the prefix | drop (per seed, paired bootstrap 95 %) | helpful, plain | helpful, with the prefix | utility |")
    print("|---|---|---|---|---|---|---|---|")
    benign = lambda r: r.get("safety_benign", 0)
    g = pooled(rs, lambda r: (benign(r), r["safety_enabled"], r["stage"], r["probe"]))
    drops = defaultdict(list)
    for r in rs:
        if r["probe"] == "harmful_rate_drop" and r["stage"] == "sft/harmful":
            drops[(benign(r), r["safety_enabled"])].append((r["seed"], r["value"], r["ci_low"], r["ci_high"]))
    for bn in sorted({benign(r) for r in rs}):
        for en in [False, True]:
            c = []
            for pr in ["harmful_rate/plain", "harmful_rate/prefix"]:
                x = g.get((bn, en, "sft/harmful", pr))
                c.append(f"{rate(x[0], x[1])} ({per_seed(x)})" if x else "–")
            c.append("; ".join(f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]" for _, v, lo, hi in sorted(drops[(bn, en)])))
            for pr in ["helpful_rate/plain", "helpful_rate/prefix", "utility"]:
                x = g.get((bn, en, "sft/harmful", pr))
                c.append(f"{rate(x[0], x[1])} ({per_seed(x)})" if x else "–")
            print(f"| {bn} | {'yes' if en else 'no (control)'} | " + " | ".join(c) + " |")
    print()


def beliefs(runs):
    rs = rows(runs / "trust-beliefs")
    if rs is None:
        return
    print("### `beliefs.toml` (after SFT; shares of 40 entities × 3 seeds)\n")
    g = pooled(rs, lambda r: (r["belief_copies"], r["stage"], r["probe"]))
    cols = [
        ("belief/pretrain", "pre-training's value"),
        ("belief/sft", "SFT's value"),
        ("belief/true", "truth"),
        ("belief_context/context", "context's value (with context)"),
        ("belief_context/sft", "SFT's value (with context)"),
        ("belief_control/sft", "controls: SFT's value"),
    ]
    print("| copies | " + " | ".join(c[1] for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for k in (0, 2, 8, 32):
        c = []
        for pr, _ in cols:
            x = g.get((k, "sft", pr))
            c.append(f"{rate(x[0], x[1])} ({per_seed(x)})" if x else "–")
        print(f"| {k} | " + " | ".join(c) + " |")
    print()


if __name__ == "__main__":
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    for f in (watermark, scale, traps, fingerprint, backdoor_align, beliefs):
        f(runs)
