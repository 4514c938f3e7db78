#!/usr/bin/env bash
# The batched ceiling against PyTorch in one run on a GPU machine: for each precision and batch,
# streampool's one batched call (`bench --threads 1 --batch N`, graph mode) and PyTorch's
# (eager, CUDA graph, torch.compile in each of COMPILE_MODES); then the engine from ENGINE_CALLERS
# batch-1 callers and one caller's p50. A table of ratios at the end (kernels-table.py).
#
#   BIN=.gpu/bin/streampool MODEL=path/to/all-MiniLM-L6-v2 OUT=results scripts/peer/gpu/kernels.sh
# Knobs: DTYPES (f16 bf16), BATCHES (128 512 1024), COMPILE_MODES
# (default,max-autotune-no-cudagraphs), SECONDS (2), ENGINE_CALLERS (256; empty: no engine run),
# TORCH (1; 0: streampool only), IMPL (functional: PyTorch as plain functions over the weights,
# SDPA flash everywhere; transformers: BertModel, whose masks take graphs and compile off flash).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-target/release/streampool}
MODEL=${MODEL:?the model directory}
OUT=${OUT:-/tmp/kernels-bench}
DTYPES=${DTYPES:-f16 bf16}
BATCHES=${BATCHES:-128 512 1024}
COMPILE_MODES=${COMPILE_MODES:-default,max-autotune-no-cudagraphs}
SECS=${SECONDS:-2}
ENGINE_CALLERS=${ENGINE_CALLERS-256}
TORCH=${TORCH:-1}
IMPL=${IMPL:-functional}
mkdir -p "$OUT"
export STREAMPOOL_CUDA_WAIT=${STREAMPOOL_CUDA_WAIT:-yield}
for dtype in $DTYPES; do
  for b in $BATCHES; do
    echo "== streampool, $dtype, batch $b"
    "$BIN" bench --device cuda --model "$MODEL" --mode graph --dtype "$dtype" --threads 1 \
      --batch "$b" --seq 128 --duration "$SECS" --json "$OUT/streampool-$dtype-$b.json" \
      > "$OUT/streampool-$dtype-$b.txt" 2>&1
    grep -iE "batch" "$OUT/streampool-$dtype-$b.txt" | tail -2
  done
  if [[ $TORCH == 1 ]]; then
    echo "== PyTorch, $dtype, batches $BATCHES"
    python3 "$here/torch_minilm_bench.py" --model-dir "$MODEL" --dtype "$dtype" --threads "" --impl "$IMPL" \
      --batch "$(echo $BATCHES | tr ' ' ,)" --modes batched,compile --compile-modes "$COMPILE_MODES" \
      --seconds "$SECS" --json "$OUT/torch-$dtype.json" 2>&1 | grep -vE "^\s*$|Warning|warn" | tail -20
  fi
  if [[ -n $ENGINE_CALLERS ]]; then
    echo "== streampool engine, $dtype, 1 and $ENGINE_CALLERS callers"
    "$BIN" bench --device cuda --model "$MODEL" --mode graph --dtype "$dtype" --engine 4 \
      --threads "1,$ENGINE_CALLERS" --batch 0 --seq 128 --duration "$SECS" \
      --json "$OUT/engine-$dtype.json" > "$OUT/engine-$dtype.txt" 2>&1
    tail -4 "$OUT/engine-$dtype.txt"
  fi
done
python3 "$here/kernels_table.py" "$OUT"
