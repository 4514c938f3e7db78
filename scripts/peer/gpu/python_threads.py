#!/usr/bin/env python3
"""Batch-1 sentence embeddings from N Python threads sharing one model, in one go on one
device: PyTorch eager (transformers' BertModel, mean pooling), sentence-transformers'
``encode``, and ``streampool.Model.embed``; then the Rust engine's own figure for the same load
(``streampool bench --engine``), so the binding's cost shows as a ratio.

``--texts words`` (the default): every request is one text of exactly ``--seq`` tokens (the
words ``streampool bench`` uses), so all four run the same load. ``--texts fixture``: the 30
reference texts (real sentences, 7 to 40 tokens), each thread cycling through them; the Rust
engine is then left out (it has no such load). Each (implementation, dtype, N) runs
``--seconds`` after a warm-up; threads start together and count their requests.

    python3 scripts/peer/gpu/python_threads.py --model DIR --bin .gpu/bin/streampool \
        --threads 1,4,16,64 --dtypes f16,f32 --json results.json
    python3 scripts/peer/gpu/python_threads.py --device cpu --model DIR --threads 1,4 \
        --dtypes f32 --texts fixture
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"]


def text_of(seq: int) -> str:
    # Each word is one WordPiece token; [CLS] and [SEP] make `seq`.
    return " ".join(WORDS[i % len(WORDS)] for i in range(seq - 2))


def run_threads(call_for, texts: list[str], threads: int, seconds: float) -> float:
    """Requests/s of `threads` Python threads each calling `call_for(text)()` in a loop, thread
    `i` starting at text `7 i` of `texts`."""
    calls = [call_for(t) for t in texts]
    for call in calls[:3]:
        call()
    start = threading.Barrier(threads + 1)
    stop = threading.Event()
    counts = [0] * threads
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        start.wait()
        k = 7 * i
        try:
            while not stop.is_set():
                calls[k % len(calls)]()
                k += 1
                counts[i] += 1
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def torch_eager(model_dir: str, dtype: str, device: str):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).to(device).eval()
    if dtype == "f16":
        model = model.half()

    def call_for(text: str):
        def call():
            with torch.inference_mode():
                enc = tok([text], return_tensors="pt", truncation=True, max_length=256).to(device)
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1)
                torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()

        return call

    return call_for


def sentence_transformers(model_dir: str, dtype: str, device: str):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device=device)
    if dtype == "f16":
        model = model.half()

    def call_for(text: str):
        return lambda: model.encode([text], show_progress_bar=False)

    return call_for


def streampool_python(model_dir: str, dtype: str, device: str, workers: int):
    import streampool

    dtype = {"f16": "float16", "f32": "float32"}[dtype]
    model = streampool.Model(model_dir, device=device, dtype=dtype, workers=workers)
    print(f"  {model!r}", file=sys.stderr)

    def call_for(text: str):
        return lambda: model.embed([text])

    return call_for


def rust_engine(binary: str, model_dir: str, dtype: str, device: str, threads: list[int], seq: int, seconds: float, workers: int, tokenize: bool = False) -> dict[int, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [
            binary, "bench", "--device", device, "--model", model_dir, "--dtype", dtype,
            "--engine", str(workers), "--threads", ",".join(map(str, threads)),
            "--seq", str(seq), "--duration", str(seconds), "--json", out.name,
        ]
        if tokenize:
            cmd.append("--engine-tokenize")
        for var, flag in [("STREAMPOOL_SPIN_US", "--engine-spin-us"), ("STREAMPOOL_WAIT_SPIN_US", "--engine-wait-spin-us")]:
            if var in os.environ:
                cmd += [flag, os.environ[var]]
        print("  " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        report = json.load(open(out.name))
    return {s["threads"]: s["requests"] / s["seconds"] for s in report["per_thread"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the model directory (all-MiniLM-L6-v2)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--texts", default="words", choices=["words", "fixture"])
    ap.add_argument("--bin", help="the streampool binary, for the Rust engine's figure")
    ap.add_argument("--threads", default="1,4,16,64")
    ap.add_argument("--dtypes", default="f16,f32")
    ap.add_argument("--impls", default="torch,st,streampool,rust")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--workers", type=int, help="the engine's streams, Python and Rust (default: 4 on CUDA, 1 on the CPU)")
    ap.add_argument("--spin-us", type=int, help="microseconds the engine's idle workers poll, Python and Rust (default: the engine's)")
    ap.add_argument("--wait-spin-us", type=int, help="microseconds a caller waiting for its answer polls, Python and Rust (default: as --spin-us)")
    ap.add_argument("--rust-tokenize", action="store_true", help="the Rust engine's callers tokenise every request, as the Python package does (bench --engine-tokenize)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.workers is None:
        args.workers = 4 if args.device == "cuda" else 1
    impls = args.impls.split(",")
    for flag, var in [(args.spin_us, "STREAMPOOL_SPIN_US"), (args.wait_spin_us, "STREAMPOOL_WAIT_SPIN_US")]:
        if flag is not None:
            os.environ[var] = str(flag)
    if args.texts == "words":
        texts = [text_of(args.seq)]
    else:
        fixture = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "minilm_reference.json"
        texts = [c["text"] for c in json.loads(fixture.read_text())["cases"]]
    results = []
    for dtype in args.dtypes.split(","):
        makers = {
            "torch": lambda: torch_eager(args.model, dtype, args.device),
            "st": lambda: sentence_transformers(args.model, dtype, args.device),
            "streampool": lambda: streampool_python(args.model, dtype, args.device, args.workers),
        }
        for impl in [i for i in impls if i in makers]:
            print(f"{impl} {dtype}", file=sys.stderr)
            call_for = makers[impl]()
            for n in threads:
                rate = run_threads(call_for, texts, n, args.seconds)
                print(f"  {n:>3} threads: {rate:10.0f} req/s", file=sys.stderr)
                results.append({"impl": impl, "dtype": dtype, "threads": n, "req_per_s": rate})
            del call_for
        if "rust" in impls and args.bin and args.texts == "words":
            print(f"rust engine {dtype}", file=sys.stderr)
            rates = rust_engine(args.bin, args.model, dtype, args.device, threads, args.seq, args.seconds, args.workers, args.rust_tokenize)
            for n, rate in rates.items():
                results.append({"impl": "rust", "dtype": dtype, "threads": n, "req_per_s": rate})
    table(results)
    if args.json:
        with open(args.json, "w") as f:
            meta = {"device": args.device, "texts": args.texts, "seq": args.seq, "workers": args.workers}
            json.dump({**meta, "results": results}, f, indent=1)


def table(results: list[dict]) -> None:
    by = {(r["impl"], r["dtype"], r["threads"]): r["req_per_s"] for r in results}
    print("| dtype | threads | PyTorch eager | sentence-transformers | streampool (Python) | Rust engine | vs eager | vs Rust |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype, n in sorted({(r["dtype"], r["threads"]) for r in results}):
        get = lambda impl: by.get((impl, dtype, n))
        sp, eager, rust = get("streampool"), get("torch"), get("rust")
        cell = lambda v: f"{v:,.0f}" if v is not None else "-"
        ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
        print(f"| {dtype} | {n} | {cell(eager)} | {cell(get('st'))} | {cell(sp)} | {cell(rust)} | {ratio(sp, eager)} | {ratio(sp, rust)} |")


if __name__ == "__main__":
    main()
