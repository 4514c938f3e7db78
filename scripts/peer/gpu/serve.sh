#!/usr/bin/env bash
# The HTTP server against the engine's own throughput, in one run on a GPU machine: for each
# precision, `bench --engine` (batch-1 callers straight into the engine), then `serve` loaded by
# `streampool load` with keep-alive clients (one 128-token text per request, then 32).
#
#   BIN=.gpu/bin/streampool MODEL=path/to/all-MiniLM-L6-v2 OUT=results scripts/peer/gpu/serve.sh
# Knobs: DTYPES (f16 f32), CLIENTS (1,16,64,256), SECONDS (5), WORKERS (4), MODE (graph).
set -uo pipefail
BIN=${BIN:-target/release/streampool}
MODEL=${MODEL:?the model directory}
OUT=${OUT:-/tmp/serve-bench}
DTYPES=${DTYPES:-f16 f32}
CLIENTS=${CLIENTS:-1,16,64,256}
SECONDS_PER_POINT=${SECONDS:-5}
WORKERS=${WORKERS:-4}
MODE=${MODE:-graph}
mkdir -p "$OUT"
for dtype in $DTYPES; do
  echo "== engine, $dtype"
  "$BIN" bench --device cuda --model "$MODEL" --mode "$MODE" --dtype "$dtype" --engine "$WORKERS" \
    --threads "$CLIENTS" --batch 0 --seq 128 --json "$OUT/engine-$dtype.json" > "$OUT/engine-$dtype.txt" 2> "$OUT/engine-$dtype.err"
  cat "$OUT/engine-$dtype.txt"; tail -3 "$OUT/engine-$dtype.err"
  "$BIN" serve --device cuda --model "$MODEL" --mode "$MODE" --dtype "$dtype" --workers "$WORKERS" \
    --addr 127.0.0.1:18080 --queue-capacity 65536 --max-concurrent-requests 4096 \
    > "$OUT/serve-$dtype.out" 2> "$OUT/serve-$dtype.err" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$OUT/serve-$dtype.out" 2>/dev/null && break; sleep 0.2; done
  head -1 "$OUT/serve-$dtype.out"
  for texts in 1 32; do
    echo "== serve, $dtype, $texts text(s) per request"
    "$BIN" load --addr 127.0.0.1:18080 --clients "$CLIENTS" --texts "$texts" --seconds "$SECONDS_PER_POINT" \
      | tee "$OUT/load-$dtype-$texts.txt"
  done
  kill -TERM "$pid"; wait "$pid"; echo "serve exited $?"
done
