#!/usr/bin/env python3
"""The table of families.sh: for each family and dtype, PyTorch's best per-caller set-up
against streampool's per-caller streams, and PyTorch's batched call (eager, torch.compile)
against streampool's batched ceiling and its engine from many batch-1 callers. Markdown on
stdout.

    families_table.py OUT_DIR
"""
import json
import os
import sys


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def main():
    out = sys.argv[1]
    rows = []
    names = sorted({f.split("-torch-")[0] for f in os.listdir(out) if "-torch-" in f})
    for fam in names:
        for dt in ("f16", "f32"):
            torch = load(os.path.join(out, f"{fam}-torch-{dt}.json"))
            sp = load(os.path.join(out, f"{fam}-streampool-{dt}.json"))
            eng = load(os.path.join(out, f"{fam}-engine-{dt}.json"))
            if not (torch and sp):
                continue
            best = torch["best"]
            fmt = lambda v: f"{v:,.0f}" if v else "-"
            per_caller = max((best[m] for m in ("eager", "graph") if m in best),
                             key=lambda b: b["req_per_s"], default=None)
            sp_pc = max(sp["per_thread"], key=lambda p: p["items_per_s"])
            if per_caller:
                pc_mode = next(m for m in ("eager", "graph") if best.get(m) is per_caller)
                pc = (f"{fmt(per_caller['req_per_s'])} ({pc_mode}, {per_caller['threads']} thr) "
                      f"| {fmt(sp_pc['items_per_s'])} ({sp_pc['threads']} thr) "
                      f"| **{sp_pc['items_per_s'] / per_caller['req_per_s']:.1f}x**")
            else:
                pc = "- | - | -"
            batched = torch["results"].get("batched_eager", {}).get("items_per_s")
            compiled = best.get("batched_compile", {}).get("seq_per_s")
            ceiling = (sp.get("batched") or {}).get("items_per_s")
            engine = max((p["items_per_s"] for p in (eng or {}).get("per_thread", [])), default=None)
            ours = max((v for v in (ceiling, engine) if v), default=None)
            ratio = f"**{ours / batched:.2f}x**" if ours and batched else "-"
            rows.append(f"| {fam} | {dt} | {pc} | {fmt(batched)} | {fmt(compiled)} | {fmt(ceiling)} "
                        f"| {fmt(engine)} | {ratio} |")
    print("| family | dtype | PyTorch best per-caller req/s | streampool per-caller req/s | ratio "
          "| PyTorch batched eager seq/s | torch.compile seq/s | streampool batched seq/s "
          "| streampool engine req/s | best / PyTorch batched |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
