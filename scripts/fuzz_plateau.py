#!/usr/bin/env python3
"""Runs one cargo-fuzz target for SECONDS on its corpus and says whether its coverage plateaued.

usage: scripts/fuzz_plateau.py TARGET SECONDS   (after `cargo +nightly fuzz build -O`; its binary
is run as built)

Every libFuzzer status line is stamped with the seconds since the start (fuzz/TARGET.plateau.log).
Printed: executions, the coverage (edges) and features at each quarter of the run, the crashes,
and the plateau verdict — coverage in the last half of the run grew by less than 0.5 % and
by fewer than 10 edges.
"""

import os
import re
import subprocess
import sys
import time

target, secs = sys.argv[1], int(sys.argv[2])
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
os.chdir(root)
log_path = f"fuzz/{target}.plateau.log"
flags = [f"-max_total_time={secs}", "-rss_limit_mb=4096", "-timeout=20", "-print_final_stats=1"]
# The binary `cargo +nightly fuzz build -O` made, run as it is (`cargo fuzz run` would rebuild it
# first after any source change); without one, cargo fuzz builds and runs.
binary = f"fuzz/target/x86_64-unknown-linux-gnu/release/{target}"
os.makedirs(f"fuzz/artifacts/{target}", exist_ok=True)
if os.path.exists(binary):
    cmd = [binary, f"fuzz/corpus/{target}", f"-artifact_prefix=fuzz/artifacts/{target}/"] + flags
else:
    cmd = ["cargo", "+nightly", "fuzz", "run", "-O", target, f"fuzz/corpus/{target}", "--"] + flags
start = time.time()
points = []  # (seconds, execs, cov, ft)
execs_final = None
status = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)")
with open(log_path, "w") as log:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    for line in p.stdout:
        t = time.time() - start
        log.write(f"{t:8.1f} {line}")
        m = status.match(line)
        if m:
            if "INITED" in line:
                points.clear()  # the corpus is loaded: the run proper starts here
            points.append((t, int(m.group(1)), int(m.group(2)), int(m.group(3))))
        if line.startswith("stat::number_of_executed_units"):
            execs_final = int(line.split()[-1])
    rc = p.wait()
crashes = len(os.listdir(f"fuzz/artifacts/{target}")) if os.path.isdir(f"fuzz/artifacts/{target}") else 0
if not points:
    print(f"{target}: no status lines (exit {rc}); see {log_path}")
    sys.exit(1)
fuzz_start = points[0][0]
span = points[-1][0] - fuzz_start


def at(frac):
    limit = fuzz_start + frac * span
    best = points[0]
    for pt in points:
        if pt[0] <= limit:
            best = pt
    return best


quarters = [at(f) for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
half, end = quarters[2], quarters[4]
growth = end[2] - half[2]
plateau = growth < max(10, 0.005 * end[2])
print(
    f"{target}: {execs_final or end[1]} executions in {secs} s; coverage at 0/¼/½/¾/1 of the run "
    + " / ".join(str(q[2]) for q in quarters)
    + f" edges (features {end[3]}); last half +{growth} edges → "
    + ("plateau" if plateau else "still rising")
    + f"; corpus {len(os.listdir(f'fuzz/corpus/{target}'))}; crashes {crashes} (exit {rc})"
)
