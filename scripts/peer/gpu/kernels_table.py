#!/usr/bin/env python3
"""The table of scripts/peer/gpu/kernels.sh: per precision and batch, streampool's batched
seq/s against PyTorch eager, CUDA graph and the best torch.compile mode; then the engine.

Usage: kernels_table.py OUT_DIR"""
import glob
import json
import os
import re
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main(out):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "streampool-*-*.json"))):
        m = re.search(r"streampool-(\w+)-(\d+)\.json$", path)
        dtype, batch = m.group(1), int(m.group(2))
        sp = (load(path) or {}).get("batched", {}).get("items_per_s")
        one = ((load(path) or {}).get("per_thread") or [{}])[0].get("p50_ms")
        torch = (load(os.path.join(out, f"torch-{dtype}.json")) or {}).get("results", {})

        def at(mode):
            r = torch.get(f"{mode}@{batch}") or torch.get(mode)
            return r if r and r.get("batch", batch) == batch else None

        eager, graph = at("batched_eager"), at("batched_graph")
        compiled = at("batched_compile")
        rows.append((dtype, batch, sp, one, eager, graph, compiled))

    def f(v):
        return f"{v:,.0f}" if v else "-"

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "-"

    print("\n| dtype | batch | streampool seq/s | 1-thread p50 ms | PyTorch eager | PyTorch graph "
          "| torch.compile (best mode) | vs eager | vs compile |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dtype, batch, sp, one, eager, graph, compiled in sorted(rows, key=lambda r: (r[0], r[1])):
        e = (eager or {}).get("items_per_s")
        g = (graph or {}).get("items_per_s")
        c = (compiled or {}).get("items_per_s")
        mode = (compiled or {}).get("mode", "-").replace("batched_compile_", "").split("@")[0]
        p50 = f"{one:.3f}" if one else "-"
        print(f"| {dtype} | {batch} | {f(sp)} | {p50} | {f(e)} | {f(g)} | {f(c)} ({mode}) "
              f"| {ratio(sp, e)} | {ratio(sp, c)} |")
    for path in sorted(glob.glob(os.path.join(out, "engine-*.json"))):
        d = load(path) or {}
        pts = ", ".join(f"{p['threads']} callers {p['items_per_s']:,.0f} req/s (p50 {p['p50_ms']:.3f} ms)"
                        for p in d.get("per_thread", []))
        print(f"\nengine, {d.get('dtype')}: {pts}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
