#!/usr/bin/env bash
# Side-by-side GPU speed: PyTorch's concurrent set-ups vs streampool's bench, MiniLM
# (all-MiniLM-L6-v2's architecture), batch 1 at 128 tokens per thread-stream, and one batched call
# as the ceiling, both in one run on one machine. Needs python3 with torch and transformers, and a
# prebuilt streampool binary (built with --features cuda; no Rust needed on the GPU machine).
#
#   scripts/peer/gpu/bench-gpu.sh                       # PyTorch f32 + f16, then .gpu/bin/streampool if present
#   scripts/peer/gpu/bench-gpu.sh path/to/streampool    # another streampool binary
#   DTYPES=f16 SECONDS_PER_POINT=1 scripts/peer/gpu/bench-gpu.sh
#   SKIP_TORCH=1 scripts/peer/gpu/bench-gpu.sh          # reuse $OUT/torch-*.json, run ours only
#
# Env: STREAMPOOL_MODEL_DIR (a sentence-transformers model dir; default .carry-model/
#      all-MiniLM-L6-v2, else ~/.cache/streampool/all-MiniLM-L6-v2, else PyTorch uses random
#      weights and says so), OUT (results folder; default target/peer-bench-gpu), PYTHON (python3),
#      DTYPES ("f32 f16"), THREADS (1,2,4,8,16,32,64), BATCH (512), SEQ (128),
#      SECONDS_PER_POINT (2), WARMUP (0.5).
# Whole default run: about 1 to 1.5 minutes of PyTorch per dtype, plus streampool's own.
set -uo pipefail
cd "$(dirname "$0")/../../.."

OUT=${OUT:-target/peer-bench-gpu}
PY=${PYTHON:-python3}
DTYPES=${DTYPES:-f32 f16}
THREADS=${THREADS:-1,2,4,8,16,32,64}
BATCH=${BATCH:-512}
SEQ=${SEQ:-128}
SECS=${SECONDS_PER_POINT:-2}
WARMUP=${WARMUP:-0.5}
SP=${1:-${STREAMPOOL_BIN:-.gpu/bin/streampool}}
mkdir -p "$OUT"

MODEL=${STREAMPOOL_MODEL_DIR:-}
for d in .carry-model/all-MiniLM-L6-v2 "$HOME/.cache/streampool/all-MiniLM-L6-v2"; do
  [[ -z $MODEL && -f $d/model.safetensors ]] && MODEL=$d
done
[[ -n $MODEL ]] && export STREAMPOOL_MODEL_DIR=$MODEL
# streampool's bench loads $STREAMPOOL_HOME/all-MiniLM-L6-v2 (its fetch cache): point it there.
if [[ -n $MODEL && -z ${STREAMPOOL_HOME:-} && $(basename "$MODEL") == all-MiniLM-L6-v2 ]]; then
  export STREAMPOOL_HOME=$(cd "$(dirname "$MODEL")" && pwd)
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || true

# 1. PyTorch.
if [[ -z ${SKIP_TORCH:-} ]]; then
  for dt in $DTYPES; do
    echo "== PyTorch $dt (model: ${MODEL:-none, random weights})"
    "$PY" scripts/peer/gpu/torch_minilm_bench.py ${MODEL:+--model-dir "$MODEL"} --dtype "$dt" \
      --threads "$THREADS" --batch "$BATCH" --seq "$SEQ" --seconds "$SECS" --warmup "$WARMUP" \
      --json "$OUT/torch-$dt.json" || echo "PyTorch $dt failed (exit $?)"
  done
fi

# 2. ours, if the binary is there.
echo "== streampool ($SP)"
if [[ ! -x $SP ]]; then
  echo "skipped: no streampool binary at $SP (build with --features cuda, put it in .gpu/bin, carry .gpu)"
else
  help=$("$SP" bench --help 2>&1 || true)
  if ! grep -q -- '--device' <<<"$help"; then
    echo "skipped: '$SP bench' is missing or has no --device: $help" | head -5
  else
    base=(bench --device cuda --model minilm --seq "$SEQ" --threads "$THREADS" --batch "$BATCH")
    grep -q -- '--duration' <<<"$help" && base+=(--duration "$SECS")
    grep -q -- '--warmup' <<<"$help" && base+=(--warmup "$WARMUP")
    if grep -q -- '--dtype' <<<"$help"; then sp_dtypes=$DTYPES; else sp_dtypes=default; fi
    if grep -q -- '--mode' <<<"$help"; then sp_modes=${MODES:-graph eager}; else sp_modes=default; fi
    for dt in $sp_dtypes; do
      for mode in $sp_modes; do
        tag=$dt${mode/#default/}; [[ $mode != default ]] && tag=$dt-$mode
        args=("${base[@]}" --json "$OUT/streampool-$tag.json")
        [[ $dt != default ]] && args+=(--dtype "$dt")
        [[ $mode != default ]] && args+=(--mode "$mode")
        echo "+ $SP ${args[*]}"
        "$SP" "${args[@]}" 2>&1 | tee "$OUT/streampool-$tag.txt" || echo "streampool bench $tag failed (exit $?)"
      done
    done
  fi
fi

# 3. side by side.
"$PY" - "$OUT" $DTYPES <<'EOF'
import glob, json, os, sys

out, dtypes = sys.argv[1], sys.argv[2:]
def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None

torch_runs = {dt: load(f"{out}/torch-{dt}.json") for dt in dtypes}
ours = {}
for p in sorted(glob.glob(f"{out}/streampool-*.json")):
    r = load(p)
    if not r:
        continue
    dt = r.get("dtype") or os.path.basename(p)[11:-5].split("-")[0]
    best = lambda rep: max((s["items_per_s"] for s in rep.get("per_thread", [])), default=0)
    # Several modes per dtype (graph, eager): compare PyTorch with our best one.
    if dt not in ours or best(r) > best(ours[dt]):
        ours[dt] = r

def fmt(x, unit=""):
    return "-" if x is None else f"{x:,.0f}{unit}"

def ratio(a, b):
    return "-" if not a or not b else f"{a / b:.2f}x"

summary = {}
for dt in dtypes:
    t, o = torch_runs.get(dt), ours.get(dt)
    if not t and not o:
        continue
    gpu = (t or {}).get("gpu") or (o or {}).get("device")
    print(f"\n== side by side, {dt}: MiniLM seq {(t or o)['seq']}, {gpu}; streampool = {(o or {}).get('model', '-')}"
          + (" (PyTorch on RANDOM weights)" if t and t.get("random_weights") else ""))
    te = (t or {}).get("results", {}).get("eager", {})
    tg = (t or {}).get("results", {}).get("graph", {})
    op = {str(s["threads"]): s for s in (o or {}).get("per_thread", [])}
    ns = sorted({*te, *tg, *op}, key=int)
    print(f"{'threads':>8}{'torch eager':>14}{'torch graph':>14}{'streampool':>14}{'ours/graph':>12}{'ours p50 ms':>13}{'graph p50 ms':>14}")
    for n in ns:
        e, g, s = te.get(n, {}), tg.get(n, {}), op.get(n, {})
        print(f"{n:>8}{fmt(e.get('items_per_s')):>14}{fmt(g.get('items_per_s')):>14}{fmt(s.get('items_per_s')):>14}"
              f"{ratio(s.get('items_per_s'), g.get('items_per_s')):>12}"
              f"{s.get('p50_ms', float('nan')):>13.3f}{g.get('p50_ms', float('nan')):>14.3f}")
    best = (t or {}).get("best", {})
    ob = max(op.values(), key=lambda s: s["items_per_s"]) if op else None
    tb = best.get("batched", {}).get("seq_per_s")
    obt = ((o or {}).get("batched") or {}).get("items_per_s")
    pe, pg = best.get("eager", {}), best.get("graph", {})
    print(f"  PyTorch best eager        {fmt(pe.get('req_per_s'), ' req/s')} @{pe.get('threads')} threads")
    print(f"  PyTorch best graph+stream {fmt(pg.get('req_per_s'), ' req/s')} @{pg.get('threads')} threads")
    print(f"  streampool best           {fmt(ob and ob['items_per_s'], ' req/s')} @{ob and ob['threads']} threads")
    print(f"  ours / PyTorch best per-thread mode: {ratio(ob and ob['items_per_s'], max(pe.get('req_per_s', 0), pg.get('req_per_s', 0)))}"
          f"  (vs eager {ratio(ob and ob['items_per_s'], pe.get('req_per_s'))}, vs graph {ratio(ob and ob['items_per_s'], pg.get('req_per_s'))})")
    print(f"  batched: PyTorch {fmt(tb, ' seq/s')} ({best.get('batched', {}).get('mode', '-')}), streampool {fmt(obt, ' seq/s')}"
          f"; ours / PyTorch {ratio(obt, tb)}")
    summary[dt] = {
        "torch_best_eager": pe, "torch_best_graph": pg, "torch_batched": best.get("batched"),
        "streampool_best": ob, "streampool_batched": (o or {}).get("batched"),
        "ratio_best_per_thread": (ob["items_per_s"] / max(pe.get("req_per_s", 0), pg.get("req_per_s", 0)))
        if ob and (pe or pg) else None,
        "ratio_batched": obt / tb if obt and tb else None,
    }
if not ours:
    print("\nstreampool: no JSON results (see above); PyTorch only")
for dt in set(ours) - set(dtypes):
    print(f"\nstreampool ran with dtype {dt!r}, which no PyTorch run matched")
with open(f"{out}/summary.json", "w") as f:
    json.dump(summary, f, indent=2)
print(f"\nwrote {out}/summary.json")
EOF

# 4. a chart per dtype (SVG), for people.
for dt in $DTYPES; do
  ls "$OUT"/streampool-"$dt"-*.json >/dev/null 2>&1 || [[ -f $OUT/torch-$dt.json ]] || continue
  "$PY" scripts/peer/gpu/plot.py "$OUT" "$dt" > "$OUT/chart-$dt.svg" && echo "wrote $OUT/chart-$dt.svg"
done
