#!/usr/bin/env python3
"""Checks a poisonlab report.html: it parses as XML (XHTML), every plot is an SVG with drawn data,
and every pooled rate carries an interval. Exit 0 and print a summary, or exit 1 with the reason.

usage: check_report.py REPORT_HTML
"""
import re
import sys
import xml.etree.ElementTree as ET

NS = {"h": "http://www.w3.org/1999/xhtml", "s": "http://www.w3.org/2000/svg"}


def main():
    path = sys.argv[1]
    text = open(path, encoding="utf-8").read()
    body = text.split("\n", 1)[1] if text.startswith("<!DOCTYPE") else text
    root = ET.fromstring(body)
    plots = root.findall(".//h:div[@class='plot']", NS)
    if not plots:
        sys.exit("no plots")
    for p in plots:
        if int(p.get("data-points", "0")) <= 0:
            sys.exit(f"plot {p.get('data-probe')} has no points")
        svg = p.find("s:svg", NS)
        if svg is None:
            sys.exit(f"plot {p.get('data-probe')} has no svg")
        drawn = [e for e in svg.iter() if e.tag.endswith("circle") or e.tag.endswith("polyline") or e.tag.endswith("line")]
        if not drawn:
            sys.exit(f"plot {p.get('data-probe')} draws nothing")
    rows = 0
    for td in root.iter("{http://www.w3.org/1999/xhtml}td"):
        t = td.text or ""
        if re.match(r"^\d\.\d{3} \(", t):
            sys.exit(f"a value without an interval: {t}")
        if "/" in t and "[" in t:
            rows += 1
    print(f"ok: {len(plots)} plots, {rows} rates with intervals")


if __name__ == "__main__":
    main()
