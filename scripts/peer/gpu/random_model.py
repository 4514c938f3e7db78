#!/usr/bin/env python3
"""A model directory with a real model's architecture and random weights, for speed runs where
the real weights are too large to carry: copies SRC's configuration, tokenizer and
sentence-transformers files, and writes model.safetensors with transformers' random
initialisation of the same architecture (seeded) in --dtype. Speed does not depend on the
values; the vectors are meaningless.

    random_model.py SRC OUT [--dtype f16]

SRC needs config.json and tokenizer.json (a weights file is not read). `--set key=value`
overrides a config.json key (an int, float or string), e.g. to make a BERT-base shape from
MiniLM's files: --set hidden_size=768 --set num_hidden_layers=12 --set intermediate_size=3072.
`--unset KEY` drops one; `--drop-dense` leaves the Dense modules out of the pipeline.
"""
import argparse
import json
import os
import shutil

import torch
from transformers import AutoConfig, AutoModel

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=list(DTYPES), default="f16")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--pooling", help="rewrite 1_Pooling/config.json to this mode (e.g. cls)")
    ap.add_argument("--unset", action="append", default=[], metavar="KEY",
                    help="drop a config.json key (e.g. layer_types, to derive it anew)")
    ap.add_argument("--drop-dense", action="store_true",
                    help="remove the Dense modules from modules.json (their weights are not made)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for dirpath, _, files in os.walk(args.src):
        for name in files:
            if name.endswith((".safetensors", ".bin", ".onnx")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), args.src)
            os.makedirs(os.path.dirname(os.path.join(args.out, rel)), exist_ok=True)
            shutil.copy(os.path.join(dirpath, name), os.path.join(args.out, rel))
    config_path = os.path.join(args.out, "config.json")
    config = json.load(open(config_path))
    for item in args.set:
        key, _, text = item.partition("=")
        config[key] = value(text)
    for key in args.unset:
        config.pop(key, None)
    json.dump(config, open(config_path, "w"), indent=2)
    if args.drop_dense:
        modules_path = os.path.join(args.out, "modules.json")
        modules = [m for m in json.load(open(modules_path)) if not m["type"].endswith("Dense")]
        json.dump(modules, open(modules_path, "w"), indent=2)
    pooling = os.path.join(args.out, "1_Pooling", "config.json")
    if os.path.isfile(pooling):
        # The pooled width follows the hidden size, and the mode --pooling if given.
        p = json.load(open(pooling))
        for key in ("embedding_dimension", "word_embedding_dimension"):
            if key in p:
                p[key] = config["hidden_size"]
        if args.pooling:
            p = {"embedding_dimension": config["hidden_size"], "pooling_mode": args.pooling,
                 "include_prompt": True}
        json.dump(p, open(pooling, "w"))
    torch.manual_seed(0)
    model = AutoModel.from_config(AutoConfig.from_pretrained(args.out)).to(DTYPES[args.dtype])
    # Keep only what streampool and AutoModel read (no pooler: sentence-transformers skips it).
    model.save_pretrained(args.out, safe_serialization=True)
    print(f"{args.out}: {config.get('model_type')} {config['num_hidden_layers']} layers x "
          f"{config['hidden_size']}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
          f"random parameters in {args.dtype}")


if __name__ == "__main__":
    main()
