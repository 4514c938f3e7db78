#!/usr/bin/env bash
# The corpus job side by side on one GPU: sentence-transformers' encode (f32 and f16, batch sizes
# 32 / 128 / 512; its best counts) against `streampool embed` on the same texts, whole process
# timed (start-up included), with our vectors checked against sentence-transformers' (cosine >=
# 0.99999 in f32, >= 0.9999 in f16). Needs python3 with torch, sentence-transformers and numpy,
# and a prebuilt streampool (--features cuda; no Rust needed on the GPU machine).
#
#   scripts/peer/gpu/corpus.sh                       # .gpu/bin/streampool, target/corpus/rust-docs.jsonl
#   scripts/peer/gpu/corpus.sh path/to/streampool
#   REPEAT=10 VARIANTS=0 scripts/peer/gpu/corpus.sh  # a smaller corpus, no tuning variants
#   DEVICE=cpu REPEAT=1 scripts/peer/gpu/corpus.sh   # the CPU: f32 only, batch 32 for the peer
#                                                    # (what scripts/peer/bench-cpu.sh runs)
#
# The corpus (scripts/peer/make-corpus.py: the paragraphs of the Rust documentation, 58,516 texts
# of natural lengths) is what sentence-transformers encodes; streampool embeds it REPEAT times
# over (default 60: 3.5 million texts), so that its start-up is a small share of the run; the
# first copy's vectors are checked. The f32 runs, slower, take the first F32_REPEAT copies.
#
# Env: DEVICE (cuda), CORPUS (.jsonl or .jsonl.xz), REPEAT (60), F32_REPEAT (REPEAT / 4), VARIANTS (1: also workers 2/8, batch tokens
#      8,192/32,768, graph mode), STREAMPOOL_MODEL_DIR (default .carry-model/all-MiniLM-L6-v2, else
#      the cache), OUT (results; default target/peer-corpus), WORK (scratch for outputs: several
#      GB; default a temporary folder, removed at the end), PYTHON (python3), COMMIT (for the
#      record).
set -uo pipefail
cd "$(dirname "$0")/../../.."

OUT=${OUT:-target/peer-corpus}
PY=${PYTHON:-python3}
SP=${1:-${STREAMPOOL_BIN:-.gpu/bin/streampool}}
REPEAT=${REPEAT:-60}
DEVICE=${DEVICE:-cuda}
VARIANTS=${VARIANTS:-1}
CORPUS=${CORPUS:-target/corpus/rust-docs.jsonl}
mkdir -p "$OUT"
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

MODEL=${STREAMPOOL_MODEL_DIR:-}
for d in .carry-model/all-MiniLM-L6-v2 "$HOME/.cache/streampool/all-MiniLM-L6-v2"; do
  [[ -z $MODEL && -f $d/model.safetensors ]] && MODEL=$d
done
[[ -n $MODEL ]] || { echo "no model: set STREAMPOOL_MODEL_DIR"; exit 1; }
[[ -x $SP ]] || { echo "no streampool binary at $SP"; exit 1; }

if [[ $CORPUS == *.xz ]]; then xz -dc "$CORPUS" > "$WORK/corpus.jsonl"; CORPUS=$WORK/corpus.jsonl; fi
N=$(wc -l < "$CORPUS")
for _ in $(seq "$REPEAT"); do cat "$CORPUS"; done > "$WORK/big.jsonl"
BIG=$((N * REPEAT))
F32_REPEAT=${F32_REPEAT:-$(( REPEAT > 4 ? REPEAT / 4 : 1 ))}
head -n $((N * F32_REPEAT)) "$WORK/big.jsonl" > "$WORK/f32.jsonl"
echo "== corpus: $N texts ($(du -h "$CORPUS" | cut -f1)), streampool runs it $REPEAT times: $BIG texts (f32: $F32_REPEAT times)"
echo "== GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
echo "== commit ${COMMIT:-unknown}, model $MODEL"

# 1. the peer, on the corpus once.
if [[ $DEVICE == cpu ]]; then peer=(--dtypes f32 --batches 32,128); else peer=(); fi
"$PY" scripts/peer/gpu/st_corpus.py --model "$MODEL" --corpus "$CORPUS" --device "$DEVICE" \
  "${peer[@]}" --json "$OUT/sentence-transformers.json" --save "$WORK/st" 2>&1 | grep -v -i warn

# 2. ours: whole process timed, output written to a file and removed.
: > "$OUT/streampool.tsv"
run() {  # run NAME DTYPE FORMAT INPUT [ARGS...]
  local name=$1 dtype=$2 format=$3 input=$4; shift 4
  local out=$WORK/out.$format texts
  texts=$(wc -l < "$input")
  local start end
  start=$(date +%s.%N)
  "$SP" embed --device "$DEVICE" --model "$MODEL" --format-in jsonl "$input" --dtype "$dtype" \
    --format "$format" -o "$out" "$@" 2> "$OUT/$name.log"
  local rc=$?
  end=$(date +%s.%N)
  local secs; secs=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
  printf '%s\t%s\t%s\t%s\t%s\t%.3f\t%s\t%s\n' "$name" "$dtype" "$format" "$*" "$texts" "$secs" "$rc" \
    "$(tail -1 "$OUT/$name.log")" >> "$OUT/streampool.tsv"
  printf '%-22s %7.2f s  %9.0f texts/s  rc=%s  | %s\n' "$name" "$secs" "$(awk -v n="$texts" -v s="$secs" 'BEGIN { print n / s }')" "$rc" \
    "$(tail -1 "$OUT/$name.log")"
  if [[ $format == npy && $rc == 0 && $texts -ge $N ]]; then
    "$PY" - "$out" "$WORK/st-$dtype.npy" "$N" "$dtype" <<'PY' | tee -a "$OUT/$name.log"
import sys, numpy as np
ours = np.load(sys.argv[1], mmap_mode="r")
st = np.load(sys.argv[2])
n, dtype = int(sys.argv[3]), sys.argv[4]
a = np.asarray(ours[:n], dtype=np.float64); b = st.astype(np.float64)
cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
floor = 0.99999 if dtype == "f32" else 0.9999
worst = int(cos.argmin())
print(f"  check vs sentence-transformers {dtype}: {ours.shape[0]} rows, min cosine {cos.min():.7f} "
      f"(text {worst}), mean {cos.mean():.7f}: {'ok' if cos.min() >= floor else 'BELOW ' + str(floor)}")
PY
  fi
  rm -f "$out"
}

head -1 "$CORPUS" > "$WORK/one.jsonl"
if [[ $DEVICE == cpu ]]; then
  run startup-f32 f32 npy "$WORK/one.jsonl"
else
  run startup-f16 f16 npy "$WORK/one.jsonl"
  run f16-npy f16 npy "$WORK/big.jsonl"
  run f16-jsonl f16 jsonl "$WORK/big.jsonl"
fi
run f32-npy f32 npy "$WORK/f32.jsonl"
run f32-jsonl f32 jsonl "$WORK/f32.jsonl"
if [[ $VARIANTS == 1 && $DEVICE != cpu ]]; then
  run f16-npy-w4 f16 npy "$WORK/big.jsonl" --workers 4
  run f16-npy-w16 f16 npy "$WORK/big.jsonl" --workers 16
  run f16-npy-t32k f16 npy "$WORK/big.jsonl" --max-batch-tokens 32768
  run f16-npy-graph f16 npy "$WORK/big.jsonl" --mode graph --workers 4
fi

# 3. side by side (and a chart: chart.svg).
"$PY" - "$OUT/sentence-transformers.json" "$OUT/streampool.tsv" "$N" <<'PY' | tee "$OUT/summary.md"
import json, sys
st = json.load(open(sys.argv[1]))
best = {}
for r in st["runs"]:
    if r["texts_per_s"] > best.get(r["dtype"], {}).get("texts_per_s", 0):
        best[r["dtype"]] = r
print(f"\n## {st['gpu']}: {sys.argv[3]} texts once for sentence-transformers (torch {st['torch']})\n")
print("| run | texts | seconds | texts/s | × sentence-transformers best |")
print("|---|---:|---:|---:|---:|")
for d, r in sorted(best.items()):
    tried = "/".join(str(x["batch"]) for x in st["runs"] if x["dtype"] == d)
    print(f"| sentence-transformers {d}, batch {r['batch']} (best of {tried}) | {st['texts']} "
          f"| {r['seconds']:.2f} | {r['texts_per_s']:.0f} | 1.0 |")
for line in open(sys.argv[2]):
    name, dtype, fmt, args, texts, secs, rc, summary = line.rstrip("\n").split("\t")
    rate = int(texts) / float(secs)
    ratio = rate / best[dtype]["texts_per_s"] if dtype in best else float("nan")
    label = f"streampool {name} {args}".strip() + ("" if rc == "0" else f" (exit {rc})")
    print(f"| {label} | {texts} | {float(secs):.2f} | {rate:.0f} | {ratio:.1f} |")
PY
python3 scripts/peer/corpus_chart.py "$OUT/sentence-transformers.json" "$OUT/streampool.tsv" "$OUT/chart.svg" \
  && echo "chart: $OUT/chart.svg"
