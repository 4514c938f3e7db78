#!/usr/bin/env bash
# Speed of each model family against PyTorch, in one run on one GPU machine: for every model
# directory, PyTorch (per-caller eager and CUDA-graph threads, one batched call eager, as a graph
# and, for f16, under torch.compile) and streampool (per-caller streams in graph mode, its
# batched ceiling, and the engine from 256 batch-1 callers), f16 and f32, 128 tokens. Before
# timing, streampool's embeddings of each model are checked against sentence-transformers on the
# GPU (compare_embed.py).
#
#   scripts/peer/gpu/families.sh                  # the default families (below)
#   FAMILIES="minilm mpnet-base" DTYPES=f16 scripts/peer/gpu/families.sh
#
# Families: minilm (all-MiniLM-L6-v2, real weights from .carry-model), bert-base (BERT, 12 layers
# of 768, CLS pooling: bge-base's shape, random weights), mpnet-base (all-mpnet-base-v2's
# architecture and tokenizer, random weights: its 418 MB of real weights are not carried);
# xlmr-l12 (XLM-RoBERTa, paraphrase-multilingual-MiniLM-L12-v2's shape: 12 layers of 384, a
# vocabulary of 250,002, random weights and the tiny fixture's tokenizer; asked for by name);
# gemma-300m (EmbeddingGemma-300m's shape: 24 Gemma-3 layers of 768, 3 heads of 256 over one
# key/value head, random weights and the tiny fixture's tokenizer, no Dense heads; asked for by
# name in FAMILIES).
# Random weights are written by random_model.py on the machine; speed does not depend on them.
#
# Env: OUT (target/families), PYTHON (python3), SP (.gpu/bin/streampool), DTYPES ("f16 f32"),
#      THREADS (1,16,64), BATCH (512), SEQ (128), SECONDS_PER_POINT (1), WARMUP (0.3),
#      COMPILE (1: torch.compile the batched f16 call), CALLERS (256), WORKERS (8),
#      CHECK (1: the correctness check), PER_CALLER (1: the per-caller sweeps; 0 times only the
#      batched calls and the engine).
set -uo pipefail
cd "$(dirname "$0")/../../.."

OUT=${OUT:-target/families}
PY=${PYTHON:-python3}
SP=${SP:-.gpu/bin/streampool}
DTYPES=${DTYPES:-f16 f32}
THREADS=${THREADS:-1,16,64}
BATCH=${BATCH:-512}
SEQ=${SEQ:-128}
SECS=${SECONDS_PER_POINT:-1}
WARMUP=${WARMUP:-0.3}
CALLERS=${CALLERS:-256}
WORKERS=${WORKERS:-8}
FAMILIES=${FAMILIES:-minilm bert-base mpnet-base}
MODELS=$OUT/models
mkdir -p "$OUT" "$MODELS"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
[[ -f .gpu/COMMIT ]] && echo "binaries of commit $(cat .gpu/COMMIT)"

model_dir() {
  case $1 in
    minilm) echo .carry-model/all-MiniLM-L6-v2 ;;
    bert-base)
      [[ -f $MODELS/bert-base/model.safetensors ]] ||
        "$PY" scripts/peer/gpu/random_model.py .carry-model/all-MiniLM-L6-v2 "$MODELS/bert-base" \
          --set hidden_size=768 --set num_hidden_layers=12 --set intermediate_size=3072 \
          --pooling cls >&2
      echo "$MODELS/bert-base" ;;
    xlmr-l12)
      [[ -f $MODELS/xlmr-l12/model.safetensors ]] ||
        "$PY" scripts/peer/gpu/random_model.py fixtures/tiny-models/xlm-roberta-mean \
          "$MODELS/xlmr-l12" --set hidden_size=384 --set num_hidden_layers=12 \
          --set num_attention_heads=12 --set intermediate_size=1536 --set vocab_size=250002 \
          --set max_position_embeddings=514 >&2
      echo '{"max_seq_length": 128, "do_lower_case": false}' >"$MODELS/xlmr-l12/sentence_bert_config.json"
      echo "$MODELS/xlmr-l12" ;;
    gemma-300m)
      [[ -f $MODELS/gemma-300m/model.safetensors ]] ||
        "$PY" scripts/peer/gpu/random_model.py fixtures/tiny-models/gemma3-mean-dense \
          "$MODELS/gemma-300m" --drop-dense --unset layer_types --unset _sliding_window_pattern \
          --set hidden_size=768 --set intermediate_size=1152 --set num_hidden_layers=24 \
          --set num_attention_heads=3 --set num_key_value_heads=1 --set head_dim=256 \
          --set query_pre_attn_scalar=256 --set sliding_window=512 --set vocab_size=262144 \
          --set max_position_embeddings=2048 >&2
      echo '{"max_seq_length": 2048, "do_lower_case": false}' >"$MODELS/gemma-300m/sentence_bert_config.json"
      echo "$MODELS/gemma-300m" ;;
    mpnet-base)
      [[ -f $MODELS/mpnet-base/model.safetensors ]] ||
        "$PY" scripts/peer/gpu/random_model.py .carry-model/all-mpnet-base-v2-config \
          "$MODELS/mpnet-base" >&2
      echo "$MODELS/mpnet-base" ;;
    *) echo "$1" ;;
  esac
}

texts=$(mktemp)
"$PY" -c "import json; print(json.dumps([c['text'] for c in json.load(open('fixtures/minilm_reference.json'))['cases']]))" >"$texts"

for fam in $FAMILIES; do
  dir=$(model_dir "$fam")
  echo "=== $fam: $dir"
  # 1. Correctness at the real shape: f32 and f16, eager and graph, against sentence-transformers.
  outs=()
  [[ ${CHECK:-1} == 1 ]] &&
  for dt in f32 f16; do
    for mode in eager graph; do
      o=$OUT/$fam-embed-$dt-$mode.json
      "$SP" embed --device cuda --model "$dir" --dtype "$dt" --mode "$mode" --quiet -o "$o" <"$texts" \
        && outs+=("$o") || echo "streampool embed $fam $dt $mode failed (exit $?)"
    done
  done
  [[ ${#outs[@]} -gt 0 ]] && "$PY" scripts/peer/gpu/compare_embed.py "$dir" "${outs[@]}" \
    --min-cosine 0.999 2>&1 | grep -v -i warn | tee "$OUT/$fam-check.txt"
  # 2. Speed.
  for dt in $DTYPES; do
    modes=eager,graph,batched
    sp_threads=$THREADS
    [[ ${PER_CALLER:-1} == 0 ]] && modes=batched && sp_threads=1
    [[ $dt == f16 && ${COMPILE:-1} == 1 ]] && modes+=,compile
    echo "== PyTorch $fam $dt"
    "$PY" scripts/peer/gpu/torch_minilm_bench.py --model-dir "$dir" --dtype "$dt" --threads "$THREADS" \
      --batch "$BATCH" --seq "$SEQ" --seconds "$SECS" --warmup "$WARMUP" --modes "$modes" \
      --json "$OUT/$fam-torch-$dt.json" 2>&1 | grep -v -i warn | tail -14
    echo "== streampool $fam $dt"
    "$SP" bench --device cuda --model "$dir" --dtype "$dt" --mode graph --seq "$SEQ" \
      --threads "$sp_threads" --batch "$BATCH" --duration "$SECS" --warmup "$WARMUP" \
      --json "$OUT/$fam-streampool-$dt.json" 2>&1 | tail -8
    "$SP" bench --device cuda --model "$dir" --dtype "$dt" --mode graph --seq "$SEQ" \
      --threads "$CALLERS" --engine "$WORKERS" --batch 0 --duration "$SECS" --warmup "$WARMUP" \
      --json "$OUT/$fam-engine-$dt.json" 2>&1 | tail -4
  done
done
rm -f "$texts"
"$PY" scripts/peer/gpu/families_table.py "$OUT" | tee "$OUT/table.md"
