#!/usr/bin/env bash
# One GPU through the device-list paths (--device cuda:0, cuda:all) against a build from before
# them (--device cuda), in one go on one machine: the engine's bench from 1, 16 and 256 callers
# (f16 twice, f32), the corpus job on 300,000 generated texts (outputs compared), an absent GPU,
# the GPU test over every GPU, and a server's /health and per-device metrics.
#
#   NEW=.gpu/streampool.xz BEFORE=.gpu/streampool-before.xz MODEL=DIR OUT=DIR \
#       scripts/peer/gpu/devices-one-gpu.sh        (binaries xz-compressed, as staged for the GPU)
set -uo pipefail
mkdir -p /tmp/sp "${OUT:=/tmp/sp/out}"
xz -dc "${NEW:-.gpu/streampool.xz}" > /tmp/sp/new; xz -dc "${BEFORE:-.gpu/streampool-before.xz}" > /tmp/sp/before; chmod +x /tmp/sp/new /tmp/sp/before
M=${MODEL:-.carry-model/all-MiniLM-L6-v2}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nvidia-smi -L; cat .gpu/COMMIT 2>/dev/null
python3 - <<'PY' > /tmp/sp/corpus.txt
import json, random
random.seed(7)
words = " ".join(c["text"] for c in json.load(open("fixtures/minilm_reference.json"))["cases"]).split()
for i in range(300_000):
    n = min(int(random.lognormvariate(3.2, 0.8)) + 1, 300)
    start = random.randrange(len(words))
    print(" ".join(words[(start + k) % len(words)] for k in range(n)))
PY
wc -l /tmp/sp/corpus.txt
bench() { bin=$1; dev=$2; dtype=$3; tag=$4
  echo "=== $tag: $bin bench --device $dev --dtype $dtype"
  /tmp/sp/$bin bench --model $M --device $dev --dtype $dtype --engine 4 --threads 1,16,256 --seq 128 --warmup 1 --duration 3 --batch 0 --json $OUT/bench-$tag.json 2>&1 | grep -v "points ("; }
bench before cuda f16 f16-before-1
bench new cuda:0 f16 f16-new-1
bench before cuda f16 f16-before-2
bench new cuda:0 f16 f16-new-2
bench before cuda f32 f32-before
bench new cuda:0 f32 f32-new
for run in 1; do
  echo "=== embed before --device cuda ($run)"; /tmp/sp/before embed --model $M --device cuda --format-in text --format npy -o /tmp/sp/before.npy /tmp/sp/corpus.txt 2>&1 | tail -1
  echo "=== embed new --device cuda:0 ($run)"; /tmp/sp/new embed --model $M --device cuda:0 --format-in text --format npy -o /tmp/sp/new.npy /tmp/sp/corpus.txt 2>&1 | tail -1
done
cmpnpy() { python3 -c "
import numpy as np, sys
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
print(sys.argv[2], a.shape, b.shape, 'identical' if (a == b).all() else 'differ', 'min cosine', cos.min(), 'max abs diff', abs(a - b).max())" "$@"; }
cmpnpy /tmp/sp/before.npy /tmp/sp/new.npy
echo "=== new embed --device cuda:all"; /tmp/sp/new embed --model $M --device cuda:all --format-in text --format npy -o /tmp/sp/all.npy /tmp/sp/corpus.txt 2>&1 | tail -1
cmpnpy /tmp/sp/before.npy /tmp/sp/all.npy
echo "=== a GPU that is not there"; /tmp/sp/new embed --model $M --device cuda:0,1 --format-in text -o /tmp/sp/x.json /tmp/sp/corpus.txt; echo "rc=$?"
echo "=== GPU test: the engine and the corpus over every GPU"
xz -dc "${GPU_TEST:-.gpu/gpu_devices.xz}" > /tmp/sp/gpu_devices; chmod +x /tmp/sp/gpu_devices
STREAMPOOL_MODEL_DIR=$PWD/$M STREAMPOOL_FIXTURE=$PWD/fixtures/minilm_reference.json /tmp/sp/gpu_devices --include-ignored 2>&1 | tail -30
echo "=== serve on cuda:all, health"; /tmp/sp/new serve --model $M --device cuda:all --addr 127.0.0.1:18080 > /tmp/sp/serve.log 2>&1 &
for i in $(seq 50); do curl -s localhost:18080/health > /dev/null 2>&1 && break; sleep 0.2; done
head -1 /tmp/sp/serve.log; curl -s localhost:18080/health; echo; curl -s localhost:18080/metrics | grep streampool_device; kill %1; wait
