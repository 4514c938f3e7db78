#!/usr/bin/env bash
# On the GPU machine: per-kernel GPU time of one batched forward of 512 x 128 tokens, BERT-base
# shape (random weights), f16, eager: streampool (embed, one batch) against PyTorch eager (ncu).
cd "$(dirname "$0")/.." || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
(cd .gpu && xz -dc pack.tar.xz | tar -xf -)
M=/tmp/bert-base
[[ -f $M/model.safetensors ]] || python3 scripts/peer/gpu/random_model.py .carry-model/all-MiniLM-L6-v2 $M \
  --set hidden_size=768 --set num_hidden_layers=12 --set intermediate_size=3072 --pooling cls 2>&1 | tail -1
python3 -c "import json; print(json.dumps(['word ' * 126] * 512))" > /tmp/texts.json
NCU="ncu --metrics gpu__time_duration.sum --csv --print-units base"
timeout 200 $NCU .gpu/bin/streampool embed --device cuda --model $M --dtype f16 --mode eager --workers 1 \
  --max-batch-tokens 65536 --quiet -o /tmp/o.json /tmp/texts.json > $OUT/streampool-ncu.csv 2>/dev/null
cat > /tmp/pt.py <<'PY'
import sys, torch
sys.path.insert(0, "scripts/peer/gpu")
import torch_minilm_bench as b
m, *_ = b.load_bert(sys.argv[1], torch.float16, torch.device("cuda"))
f = b.make_forward(m, "cls")
ids, mask = b.make_inputs(512, 128, 30522, torch.float16, torch.device("cuda"), 7)
with torch.inference_mode():
    f(ids, mask); torch.cuda.synchronize()
    torch.cuda.nvtx.range_push("timed"); f(ids, mask); torch.cuda.synchronize()
PY
timeout 200 $NCU python3 /tmp/pt.py $M > $OUT/torch-ncu.csv 2>/dev/null
python3 - <<'PY'
import csv, collections, os
for name in ("streampool", "torch"):
    rows = [r for r in csv.reader(open(os.environ["OUT"] + f"/{name}-ncu.csv")) if len(r) > 10]
    head = rows[0]; ki = head.index("Kernel Name"); vi = head.index("Metric Value")
    t = collections.Counter(); n = collections.Counter()
    for r in rows[1:]:
        try: v = float(r[vi].replace(",", ""))
        except ValueError: continue
        if v < 20000: continue  # batched kernels only (>= 20 us)
        k = r[ki][:70]; t[k] += v; n[k] += 1
    tot = sum(t.values())
    print(f"== {name}: {tot/1e6:.2f} ms in kernels of >= 20 us")
    for k, v in t.most_common(14): print(f"{v/1e6:8.3f} ms {n[k]:4d}x  {k}")
PY
