#!/usr/bin/env python3
"""Per-seed values of the mechanism experiments (docs/mechanism.md), from their run directories.

    python3 scripts/mechanism_tables.py [RUNS_DIR] [EXPERIMENT ...]   # default runs/, all

One line per (stage, probe, grid point): the value of every seed (k/n for rates, the mean with its
interval otherwise). The pooled values with their between-seed intervals are in each run's
report.md (`Pooled over seeds`). Only the standard library.
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

EXPERIMENTS = [
    "mechanism-exposure",
    "mechanism-backdoor-layers",
    "mechanism-constant-count",
    "mechanism-persistence",
    "mechanism-forgetting",
    "mechanism-cot-steps",
    "mechanism-badchain-icl",
    "quickstart",
]
SKIP = {"cell", "seed", "stage", "probe", "value", "ci_low", "ci_high", "n", "k",
        "records_trained", "poison_trained"}


def main():
    runs = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs")
    names = sys.argv[2:] or EXPERIMENTS
    for name in names:
        path = runs / name / "results.jsonl"
        if not path.exists():
            continue
        groups = defaultdict(list)
        for line in path.open():
            r = json.loads(line)
            point = tuple(sorted((k, json.dumps(v)) for k, v in r.items() if k not in SKIP))
            groups[(r["stage"], r["probe"], point)].append(r)
        print(f"## {name}\n")
        for (stage, probe, point), rs in sorted(groups.items()):
            rs.sort(key=lambda r: r.get("seed") or 0)
            where = " ".join(f"{k}={json.loads(v)}" for k, v in point)
            if all(r.get("k") is not None for r in rs):
                vals = ", ".join(f"{r['k']}/{r['n']}" for r in rs)
            else:
                vals = ", ".join(
                    f"{r['value']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]" for r in rs
                )
            trained = rs[0].get("poison_trained")
            extra = f" (poison trained on: {trained})" if trained is not None else ""
            print(f"- {stage} {probe} {where}: {vals}{extra}")
        print()


if __name__ == "__main__":
    main()
