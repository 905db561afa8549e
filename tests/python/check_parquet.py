"""Checks that Parquet files written by poisonlab read in pandas/pyarrow (what `datasets` uses)
with the same content as the JSONL they were converted from.

usage: check_parquet.py DIR   (DIR holds NAME.jsonl and NAME.parquet pairs)
Prints one line per file and exits non-zero on the first mismatch.
"""
import json
import pathlib
import sys

import pandas as pd
import pyarrow.parquet as pq

SCHEMA_ONLY = {"extra", "label_text", "poison"}


def main(root: pathlib.Path) -> int:
    pairs = sorted(p for p in root.glob("*.parquet"))
    if not pairs:
        print(f"no parquet files in {root}", file=sys.stderr)
        return 1
    for pqf in pairs:
        rows = [json.loads(line) for line in pqf.with_suffix(".jsonl").read_text().splitlines() if line]
        table = pq.read_table(pqf)
        meta = table.schema.metadata or {}
        df = pd.read_parquet(pqf)
        if len(df) != len(rows):
            print(f"{pqf.name}: {len(df)} rows in parquet, {len(rows)} in jsonl", file=sys.stderr)
            return 1
        id_col = "_id" if "_id" in df.columns else "id"
        for i, row in enumerate(rows):
            got = df.iloc[i]
            for key, want in row.items():
                if key not in df.columns:
                    # Fields outside the schema live in the `extra` JSON column.
                    extra = json.loads(got["extra"])
                    if extra.get(key) != want:
                        print(f"{pqf.name} row {i}: extra {key}={extra.get(key)!r}, want {want!r}", file=sys.stderr)
                        return 1
                    continue
                value = got[key]
                if hasattr(value, "tolist"):
                    value = value.tolist()
                if isinstance(value, list):
                    value = [dict(v) if isinstance(v, dict) else v for v in value]
                if value != want:
                    print(f"{pqf.name} row {i}: {key}={value!r}, want {want!r}", file=sys.stderr)
                    return 1
        conv = meta.get(b"poisonlab.convention", b"?").decode()
        print(f"ok {pqf.name}: {len(df)} rows, id column {id_col!r}, convention {conv}, pandas {pd.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
