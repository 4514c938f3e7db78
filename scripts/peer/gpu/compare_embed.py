#!/usr/bin/env python3
"""Checks streampool's embeddings of a model against sentence-transformers' on the GPU: the 30
texts of fixtures/minilm_reference.json, sentence-transformers in f32 on CUDA (TF32 off) as the
reference, and each streampool output given (a JSON array of vectors for the same texts, in
order), reporting the minimum cosine and maximum absolute difference per output.

    compare_embed.py MODEL_DIR [--min-cosine 0.9999] OUT.json [OUT2.json ...]

Exit status 1 if any output falls below --min-cosine.
"""
import argparse
import json
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("outputs", nargs="+")
    ap.add_argument("--min-cosine", type=float, default=0.9999)
    ap.add_argument("--texts", default="fixtures/minilm_reference.json")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    texts = [c["text"] for c in json.load(open(args.texts))["cases"]]
    st = SentenceTransformer(args.model_dir, device="cuda").float()
    want = st.encode(texts, convert_to_numpy=True, batch_size=len(texts)).astype(np.float64)
    bad = False
    for path in args.outputs:
        got = np.asarray(json.load(open(path)), dtype=np.float64)
        cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
        diff = np.abs(got - want).max()
        ok = cos.min() >= args.min_cosine
        bad |= not ok
        print(f"{path}: {len(got)} texts, min cosine {cos.min():.7f}, max abs diff {diff:.2e} "
              f"{'ok' if ok else 'BELOW ' + str(args.min_cosine)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
