#!/usr/bin/env bash
# Build and run bench.cu with nvcc (the kernel file and common.cuh concatenated, as NVRTC sees
# them). Usage on the GPU machine, from the repository root: scripts/peer/gpu/tf32x3/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernels=$here/../../../../backends/cuda/kernels
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
tmp=$(mktemp -d)
cat "$kernels/common.cuh" "$kernels/tf32x3.cu" | sed 's/^#define INFINITY.*//' > "$tmp/kern.cu"
cp "$here/bench.cu" "$tmp/"
"$NVCC" -O2 -arch=sm_90 -o "$tmp/bench" "$tmp/bench.cu" -lcublas
"$tmp/bench"
