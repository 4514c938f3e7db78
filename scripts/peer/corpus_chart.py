#!/usr/bin/env python3
"""A bar chart (SVG, no dependencies) of a corpus run: texts/s of sentence-transformers' best
per dtype and of each streampool run, from the files scripts/peer/gpu/corpus.sh writes.

    scripts/peer/corpus_chart.py OUT/sentence-transformers.json OUT/streampool.tsv chart.svg
"""
import json
import sys
from html import escape


def main():
    st_path, tsv_path, out_path = sys.argv[1:4]
    st = json.load(open(st_path))
    bars = []
    for dtype in ("f16", "f32"):
        runs = [r for r in st["runs"] if r["dtype"] == dtype]
        if runs:
            best = max(runs, key=lambda r: r["texts_per_s"])
            bars.append((f"sentence-transformers {dtype} (batch {best['batch']})",
                         best["texts_per_s"], "#9aa5b1"))
    for line in open(tsv_path):
        name, dtype, fmt, args, texts, secs, rc = line.rstrip("\n").split("\t")[:7]
        if rc != "0" or int(texts) < 100:
            continue  # failed runs and the start-up probe
        label = f"streampool {dtype} {fmt}" + (f" {args}" if args else "")
        bars.append((label, int(texts) / float(secs), "#2f6fb2" if dtype == "f16" else "#5b9bd5"))
    width, left, row, top = 900, 330, 26, 40
    top_value = max(v for _, v, _ in bars)
    height = top + row * len(bars) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(st["gpu"])}: '
             f'texts/s, whole process (higher is better)</text>']
    for i, (label, value, colour) in enumerate(bars):
        y = top + i * row
        w = (width - left - 90) * value / top_value
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}">{value:,.0f}</text>')
    parts.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
