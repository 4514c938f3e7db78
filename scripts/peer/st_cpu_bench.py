#!/usr/bin/env python3
"""CPU peer benchmark: sentence-transformers (PyTorch CPU, oneDNN/MKL) on all-MiniLM-L6-v2.

Measures, each for a fixed wall-clock duration after a warm-up:
  * texts/s one at a time (model.encode on a single text, end to end incl. tokenization)
  * texts/s batched (model.encode on batches of --batch texts)
  * the same two as bare model forward passes on pre-tokenized input (no tokenizer, no pooling)
  * torch f32 matmul GFLOP/s (2048^3 and MiniLM FFN-shaped [4096,384]x[384,1536])
Every text tokenizes to exactly --seq tokens, [CLS] and [SEP] included.

Usage: st_cpu_bench.py --model DIR [--seq 128] [--batch 32] [--seconds 10]
                       [--threads N] [--dtype f32|bf16] [--json PATH]
Run offline: HF_HUB_OFFLINE=1 (the model is a local sentence-transformers directory).
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import time

import torch

# Common English words; the ones that are a single WordPiece token are kept.
WORDS = (
    "the of and to in is was for on that with as by at from his it an were are which this be "
    "or has had not first one their its new after who they have her she two been other when "
    "there all during into school time may years more most only over city some world would "
    "where later up such used many can state about national out known university united then "
    "made these film three under year well him part game also team water music work house "
    "river people long small found life between both group name high second north south day"
).split()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        name = next(l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name"))
        flags = next(l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags"))
        keep = [x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if x in flags]
        return name, keep
    except (OSError, StopIteration):
        return platform.processor(), []


def make_texts(tok, seq, n):
    """n distinct texts, each exactly `seq` tokens long with [CLS]/[SEP]."""
    single = [w for w in WORDS if len(tok.tokenize(w)) == 1]
    need = seq - 2
    texts = []
    for i in range(n):
        words = [single[(i * 7 + j * (1 + i % 5)) % len(single)] for j in range(need)]
        texts.append(" ".join(words))
    lens = {len(tok(t)["input_ids"]) for t in texts}
    assert lens == {seq}, f"texts tokenize to {lens}, wanted {seq}"
    return texts


def cpu_seconds():
    """(busy CPU seconds of the whole machine, CPU seconds of this process) so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = sum(v[:8]) - v[3] - v[4]  # all but idle and iowait
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system


def timed(fn, items_per_call, seconds, warmup):
    """Run fn repeatedly for `seconds` after `warmup` seconds; return items/s and per-call ms stats."""
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        fn()
    lat = []
    cpu0 = cpu_seconds()
    start = time.perf_counter()
    end = start + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if t1 >= end:
            break
    total = time.perf_counter() - start
    cpu1 = cpu_seconds()
    other = (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])  # CPU time other processes took meanwhile
    lat.sort()
    return {
        "items_per_s": len(lat) * items_per_call / total,
        "calls": len(lat),
        "seconds": total,
        "ms_p50": 1e3 * statistics.median(lat),
        "ms_p99": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "other_procs_cpu_share": max(0.0, other) / (total * os.cpu_count()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="sentence-transformers model directory")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0, help="measured duration of each case")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    load_before = os.getloadavg()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    model.max_seq_length = max(model.max_seq_length or 0, args.seq)
    tok = model.tokenizer
    texts = make_texts(tok, args.seq, 4 * args.batch)

    bf16 = args.dtype == "bf16"
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def encode(batch):
        with torch.inference_mode(), amp():
            return model.encode(batch, batch_size=len(batch), show_progress_bar=False, convert_to_numpy=True)

    bert = model[0].auto_model if hasattr(model[0], "auto_model") else model[0].model
    enc1 = tok(texts[:1], return_tensors="pt")
    encb = tok(texts[: args.batch], return_tensors="pt")

    def forward(enc):
        with torch.inference_mode(), amp():
            return bert(**enc).last_hidden_state

    i = [0]

    def one():
        i[0] = (i[0] + 1) % len(texts)
        encode(texts[i[0] : i[0] + 1])

    def batched():
        i[0] = (i[0] + args.batch) % len(texts)
        encode((texts + texts)[i[0] : i[0] + args.batch])

    results = {}
    cases = [
        ("encode_1", one, 1),
        (f"encode_b{args.batch}", batched, args.batch),
        ("forward_1", lambda: forward(enc1), 1),
        (f"forward_b{args.batch}", lambda: forward(encb), args.batch),
    ]
    for name, fn, n in cases:
        results[name] = timed(fn, n, args.seconds, args.warmup)

    mm_dtype = torch.bfloat16 if bf16 else torch.float32
    for name, (m, k, n) in {"matmul_2048": (2048, 2048, 2048), "matmul_minilm_ffn": (4096, 384, 1536)}.items():
        a = torch.randn(m, k, dtype=mm_dtype)
        b = torch.randn(k, n, dtype=mm_dtype)
        c = torch.empty(m, n, dtype=mm_dtype)
        r = timed(lambda: torch.mm(a, b, out=c), 1, args.seconds / 2, args.warmup / 2)
        r["gflops"] = 2.0 * m * k * n * r["items_per_s"] / 1e9
        r["shape"] = [m, k, n]
        results[name] = r

    load_after = os.getloadavg()
    cpu, flags = cpu_model()
    out = {
        "peer": "sentence-transformers",
        "model": os.path.abspath(args.model),
        "seq": args.seq,
        "batch": args.batch,
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "loadavg_1m_before_after": [load_before[0], load_after[0]],
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "sentence_transformers": __import__("sentence_transformers").__version__,
        "results": results,
    }

    print(f"sentence-transformers {out['sentence_transformers']}, torch {out['torch']}, "
          f"{out['threads']} threads, {args.dtype}, seq {args.seq}, on {cpu} ({' '.join(flags)})")
    print(f"{'case':<22}{'texts/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'GFLOP/s':>10}{'others%':>9}")
    for name, r in results.items():
        if "gflops" in r:
            print(f"{name:<22}{'':>10}{r['ms_p50']:>10.2f}{r['ms_p99']:>10.2f}{r['gflops']:>10.1f}{100 * r['other_procs_cpu_share']:>8.0f}%")
        else:
            print(f"{name:<22}{r['items_per_s']:>10.1f}{r['ms_p50']:>10.2f}{r['ms_p99']:>10.2f}{'':>10}{100 * r['other_procs_cpu_share']:>8.0f}%")
    worst = max(r["other_procs_cpu_share"] for r in results.values())
    if worst > 0.05:
        print(f"WARNING: other processes used up to {100 * worst:.0f}% of the machine's CPU during a case "
              "(column others%); OpenMP threads on busy cores slow PyTorch a lot: rerun on an idle machine")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
