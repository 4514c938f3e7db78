#!/usr/bin/env python3
"""sentence-transformers' encode on a corpus (on the GPU, or --device cpu): texts/s for each dtype and batch size
(tokenisation included, model loaded and warmed up beforehand), and the embeddings of each
dtype saved for checking other implementations against.

Usage: st_corpus.py --model DIR --corpus FILE.jsonl [--dtypes f32,f16] [--batches 32,128,512]
                    [--json OUT.json] [--save PREFIX] [--device cuda|cpu]
                    (PREFIX-f32.npy, PREFIX-f16.npy)
"""
import argparse
import json
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--dtypes", default="f32,f16")
    ap.add_argument("--batches", default="32,128,512")
    ap.add_argument("--json")
    ap.add_argument("--save")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    on_gpu = args.device.startswith("cuda")
    name = torch.cuda.get_device_name(0) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    results = {"texts": len(texts), "gpu": name,
               "torch": torch.__version__, "runs": []}
    for dtype in args.dtypes.split(","):
        model = SentenceTransformer(args.model, device=args.device)
        if dtype == "f16":
            model.half()
        model.encode(texts[:256 if not on_gpu else 2048], batch_size=32)  # warm-up
        saved = False
        for batch in [int(b) for b in args.batches.split(",")]:
            if on_gpu:
                torch.cuda.synchronize()
            start = time.perf_counter()
            emb = model.encode(texts, batch_size=batch, convert_to_numpy=True)
            seconds = time.perf_counter() - start
            run = {"dtype": dtype, "batch": batch, "seconds": seconds,
                   "texts_per_s": len(texts) / seconds}
            results["runs"].append(run)
            print(f"sentence-transformers {dtype} batch {batch}: {run['texts_per_s']:.0f} texts/s "
                  f"({seconds:.2f} s)", flush=True)
            if args.save and not saved:
                np.save(f"{args.save}-{dtype}.npy", emb.astype(np.float32))
                saved = True
        del model
        if on_gpu:
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
