#!/usr/bin/env python3
"""Chart of a bench-gpu.sh run: requests/s against threads for PyTorch (eager, CUDA graph +
stream per thread) and streampool (each mode), with both batched ceilings as dashed lines.
Dependency-free SVG.  Usage: plot.py OUT_DIR DTYPE > chart.svg  (reads OUT_DIR/torch-DTYPE.json,
or the PyTorch table in OUT_DIR/log.txt, and OUT_DIR/streampool-DTYPE-*.json)."""
import glob, json, math, os, re, sys

out, dt = sys.argv[1], sys.argv[2]
series, ceilings = {}, {}

def torch_from_log():
    text = open(os.path.join(out, "log.txt")).read()
    block = text.split(f"== PyTorch {dt}")[1].split("== ")[0]
    rows = re.findall(r"^(eager|graph|batched_eager|batched_graph)\s+(\d+)\s+([\d.]+) (?:req|seq)/s", block, re.M)
    res = {}
    for mode, n, v in rows:
        res.setdefault(mode, {})[n] = {"items_per_s": float(v)}
    return res

def rates(d):
    # A mode is either {threads: {items_per_s}} or, for the batched ones, one {items_per_s} record.
    if isinstance(d, dict) and ("items_per_s" in d or "seq_per_s" in d):
        return [d.get("items_per_s", d.get("seq_per_s"))]
    return [r for v in (d or {}).values() if isinstance(v, dict) for r in rates(v)]

tj = os.path.join(out, f"torch-{dt}.json")
torch = json.load(open(tj))["results"] if os.path.exists(tj) else torch_from_log()
for mode in ("eager", "graph"):
    if mode in torch:
        series[f"PyTorch {'graph + stream' if mode == 'graph' else 'eager'}"] = sorted(
            (int(n), rates(v)[0]) for n, v in torch[mode].items() if rates(v))
b = max((r for m in ("batched_eager", "batched_graph") for r in rates(torch.get(m))), default=None)
if b:
    ceilings["PyTorch batched 512"] = b
for p in sorted(glob.glob(os.path.join(out, f"streampool-{dt}-*.json"))):
    r = json.load(open(p))
    series[f"streampool {r['model'].split('(')[-1].rstrip(')')}"] = [(s["threads"], s["items_per_s"]) for s in r["per_thread"]]
    if r.get("batched"):
        ceilings[f"streampool batched {r['batch']}"] = max(ceilings.get(f"streampool batched {r['batch']}", 0), r["batched"]["items_per_s"])

W, H, L, R, T, B = 760, 460, 80, 200, 50, 60
xmax = max(n for s in series.values() for n, _ in s)
ymax = max([v for s in series.values() for _, v in s] + list(ceilings.values())) * 1.08
x = lambda n: L + math.log2(n) / math.log2(xmax) * (W - L - R)
y = lambda v: H - B - v / ymax * (H - T - B)
colors = ["#999", "#e07b00", "#1f6feb", "#2da44e", "#8250df"]
o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="13">',
     '<rect width="100%" height="100%" fill="white"/>',
     f'<text x="{(W - R + L) / 2}" y="28" text-anchor="middle" font-size="16">MiniLM batch 1, 128 tokens, {dt}: requests/s vs threads</text>']
for i in range(6):
    v = ymax * i / 5
    o.append(f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/><text x="{L - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
for n in sorted({n for s in series.values() for n, _ in s}):
    o.append(f'<text x="{x(n):.1f}" y="{H - B + 20}" text-anchor="middle">{n}</text>')
o.append(f'<text x="{(W - R + L) / 2}" y="{H - 15}" text-anchor="middle">threads (each on its own stream)</text>')
for k, (name, v) in enumerate(ceilings.items()):
    c = "#c33" if name.startswith("PyTorch") else "#1f6feb"
    o.append(f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{c}" stroke-dasharray="6 4"/>')
    o.append(f'<text x="{W - R - 4}" y="{y(v) - 5:.1f}" text-anchor="end" fill="{c}">{name}: {v:,.0f}/s</text>')
for k, (name, pts) in enumerate(series.items()):
    c = colors[k % len(colors)]
    o.append(f'<polyline fill="none" stroke="{c}" stroke-width="2.5" points="{" ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in pts)}"/>')
    o += [f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3.5" fill="{c}"/>' for n, v in pts]
    o.append(f'<text x="{W - R + 6}" y="{T + 20 + 18 * k}" fill="{c}">{name}</text>')
o.append("</svg>")
print("\n".join(o))
