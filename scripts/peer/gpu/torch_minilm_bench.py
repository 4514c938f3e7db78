#!/usr/bin/env python3
"""GPU peer benchmark: PyTorch's concurrent set-ups for MiniLM inference.

The model is all-MiniLM-L6-v2's architecture (BERT, 6 layers, hidden 384, 12 heads, FFN 1536):
forward + mean pooling + L2 normalisation, batch 1 and --seq tokens per request (no padding, so
no attention mask is needed; the pooling still applies one). Modes, each point a warm-up and
then a fixed duration:
  eager    N threads, each with its own torch.cuda.Stream, one request at a time per thread
  graph    N threads, each replaying its own CUDA graph (static input/output) on its own stream
  batched  one call of --batch sequences on one stream, eager and as a CUDA graph (the ceiling)
  compile  with batched: that call under torch.compile too (Inductor; --compile-modes, each
           compiled afresh; the best of them is reported as batched_compile)
A request's latency runs from its launch to its stream's synchronize() returning; throughput is
completed requests over the wall time from the common start to the last completion.

Weights: --model-dir (a sentence-transformers directory: config.json + model.safetensors, which
may hold f16; loaded into transformers' BertModel and cast to --dtype; another model_type, MPNet
or XLM-RoBERTa, through AutoModel), else random weights of MiniLM's architecture (the output says
which). Pooling as the directory's 1_Pooling says (mean or CLS). f32 runs with TF32 off.

Usage: torch_minilm_bench.py [--model-dir DIR] [--dtype f32|f16|bf16] [--threads 1,2,4,...]
                             [--batch 512] [--seq 128] [--seconds 2] [--warmup 0.5]
                             [--modes eager,graph,batched,compile] [--json PATH]
                             [--compile-modes default,max-autotune-no-cudagraphs]
--batch may list several sizes (128,512,1024): the batched results are then keyed mode@batch.
"""
import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
import traceback

import torch
import torch.nn.functional as F

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
ARCH = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
            intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2,
            hidden_act="gelu", layer_norm_eps=1e-12)


# ---------------------------------------------------------------------------------------------
# The model


def load_other(model_dir, dtype, device):
    """Any other architecture of model_dir (MPNet, XLM-RoBERTa, ...) through AutoModel: SDPA
    attention where transformers has it for the architecture, its own otherwise."""
    from safetensors import safe_open
    from transformers import AutoModel

    weights = os.path.join(model_dir, "model.safetensors")
    with safe_open(weights, "pt") as f:
        stored = sorted({str(f.get_slice(k).get_dtype()).lower() for k in f.keys()})
    model = None
    for attn in ("sdpa", "eager"):
        for extra in ({"add_pooling_layer": False}, {}):  # Gemma has no pooler to leave out
            try:
                model = AutoModel.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn,
                                                  **extra)
                break
            except (ValueError, TypeError) as e:  # no SDPA for this architecture
                print(f"attention {attn} {extra}: {e}")
        if model is not None:
            break
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    c = model.config
    arch = dict(type=c.model_type, attention=c._attn_implementation, layers=c.num_hidden_layers,
                hidden=c.hidden_size, heads=c.num_attention_heads, ffn=c.intermediate_size,
                vocab=c.vocab_size)
    return model, os.path.abspath(model_dir), stored, arch


def load_bert(model_dir, dtype, device):
    """transformers BertModel (SDPA attention), from model_dir if it has weights, else random;
    another architecture of model_dir through `load_other`."""
    from transformers import BertConfig, BertModel

    config_path = os.path.join(model_dir, "config.json") if model_dir else None
    if config_path and os.path.isfile(config_path):
        if json.load(open(config_path)).get("model_type", "bert") != "bert":
            return load_other(model_dir, dtype, device)
    weights = os.path.join(model_dir, "model.safetensors") if model_dir else None
    if weights and os.path.isfile(weights):
        config = BertConfig.from_pretrained(model_dir)
        source = os.path.abspath(model_dir)
    else:
        config = BertConfig(**ARCH)
        weights, source = None, "random weights (no model dir" + (f" at {model_dir})" if model_dir else ")")
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    stored = None
    if weights:
        from safetensors.torch import load_file

        sd = load_file(weights)
        stored = sorted({str(v.dtype).replace("torch.", "") for v in sd.values() if v.is_floating_point()})
        sd = {(k[5:] if k.startswith("bert.") else k): v for k, v in sd.items()}
        sd = {k: v for k, v in sd.items() if not k.startswith("pooler.")}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        buffers = ("position_ids", "token_type_ids")  # persistent in some versions, not in others
        missing = [k for k in missing if not k.endswith(buffers)]
        unexpected = [k for k in unexpected if not k.endswith(buffers)]
        if missing or unexpected:
            raise SystemExit(f"{weights}: missing {missing}, unexpected {unexpected}")
    model = model.to(device=device, dtype=dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    c = model.config
    arch = dict(layers=c.num_hidden_layers, hidden=c.hidden_size, heads=c.num_attention_heads,
                ffn=c.intermediate_size, vocab=c.vocab_size)
    return model, source, stored, arch


def pooling_of(model_dir):
    """The model's pooling mode from 1_Pooling/config.json (mean when it does not say)."""
    path = os.path.join(model_dir or "", "1_Pooling", "config.json")
    if not os.path.isfile(path):
        return "mean"
    c = json.load(open(path))
    if isinstance(c.get("pooling_mode"), str):
        return c["pooling_mode"]
    return "cls" if c.get("pooling_mode_cls_token") else "mean"


def pool_normalize(h, mask, pooling):
    """[B, S, H] -> L2-normalised [B, H]: the first token for CLS pooling, else the mean over
    the mask."""
    if pooling == "cls":
        pooled = h[:, 0]
    else:
        m = mask.unsqueeze(-1)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return F.normalize(pooled, p=2.0, dim=-1)


def make_forward(bert, pooling="mean"):
    """ids [B, S] int64, mask [B, S] (dtype of the model) -> L2-normalised pooled [B, H] (mean
    over the mask, or the first token for CLS pooling)."""

    def forward(ids, mask):
        h = bert(input_ids=ids).last_hidden_state  # no padding: all tokens attend to all
        return pool_normalize(h, mask, pooling)

    return forward


def make_functional_forward(bert, pooling="mean"):
    """The same model as plain PyTorch functions over bert's weights: one fused QKV linear,
    F.scaled_dot_product_attention without a mask (no padding here), F.gelu, F.layer_norm.
    transformers 5 builds an explicit attention mask whenever it cannot look at the mask's
    values (CUDA graph capture, torch.compile), which takes SDPA off its flash kernel; this
    forward keeps every set-up on it, so PyTorch is measured at its best."""
    emb = bert.embeddings
    heads = bert.config.num_attention_heads
    layers = []
    for layer in bert.encoder.layer:
        a = layer.attention.self
        layers.append(dict(
            wqkv=torch.cat([a.query.weight, a.key.weight, a.value.weight]),
            bqkv=torch.cat([a.query.bias, a.key.bias, a.value.bias]),
            wo=layer.attention.output.dense.weight, bo=layer.attention.output.dense.bias,
            ln1=layer.attention.output.LayerNorm,
            wi=layer.intermediate.dense.weight, bi=layer.intermediate.dense.bias,
            wo2=layer.output.dense.weight, bo2=layer.output.dense.bias,
            ln2=layer.output.LayerNorm))

    def ln(x, m):
        return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)

    def forward(ids, mask):
        b, s = ids.shape
        pos = emb.position_embeddings.weight[:s]
        x = ln(emb.word_embeddings(ids) + pos + emb.token_type_embeddings.weight[0], emb.LayerNorm)
        for w in layers:
            qkv = F.linear(x, w["wqkv"], w["bqkv"]).view(b, s, 3, heads, -1).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            att = att.transpose(1, 2).reshape(b, s, -1)
            x = ln(F.linear(att, w["wo"], w["bo"]) + x, w["ln1"])
            x = ln(F.linear(F.gelu(F.linear(x, w["wi"], w["bi"])), w["wo2"], w["bo2"]) + x, w["ln2"])
        return pool_normalize(x, mask, pooling)

    return forward


def make_inputs(batch, seq, vocab, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (batch, seq), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    return ids.to(device), torch.ones(batch, seq, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# Workers: one per thread, each with its own stream (and, for graphs, its own graph and buffers)


class EagerWorker:
    def __init__(self, forward, ids, mask):
        self.forward, self.ids, self.mask = forward, ids, mask
        self.stream = torch.cuda.Stream()

    def step(self):
        with torch.cuda.stream(self.stream):
            self.out = self.forward(self.ids, self.mask)
        self.stream.synchronize()


class GraphWorker:
    """Captures forward(static ids, static mask) on its own stream; step() replays it there."""

    def __init__(self, forward, ids, mask, pool=None):
        self.ids, self.mask = ids, mask
        self.stream = torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            for _ in range(3):  # warm up on the capture stream (cuBLAS handles, workspaces)
                forward(ids, mask)
        self.stream.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=self.stream, pool=pool):
            self.out = forward(ids, mask)
        torch.cuda.synchronize()

    def step(self):
        with torch.cuda.stream(self.stream):
            self.graph.replay()
        self.stream.synchronize()


def run_point(workers, items_per_call, seconds, warmup):
    """All workers' threads run warm-up, meet, then run `seconds`; returns throughput and latency."""
    n = len(workers)
    barrier = threading.Barrier(n + 1)
    lats = [None] * n
    ends = [0.0] * n
    errors = []
    t = {}

    def body(i, w):
        try:
            with torch.inference_mode():
                stop = time.perf_counter() + warmup
                while time.perf_counter() < stop:
                    w.step()
                barrier.wait()
                barrier.wait()  # main thread set t["end"] between the two
                end, lat = t["end"], []
                while True:
                    t0 = time.perf_counter()
                    w.step()
                    t1 = time.perf_counter()
                    lat.append(t1 - t0)
                    if t1 >= end:
                        break
                lats[i], ends[i] = lat, t1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
            barrier.abort()

    threads = [threading.Thread(target=body, args=(i, w), daemon=True) for i, w in enumerate(workers)]
    for th in threads:
        th.start()
    try:
        barrier.wait()
        torch.cuda.synchronize()
        t["start"] = time.perf_counter()
        t["end"] = t["start"] + seconds
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    for th in threads:
        th.join()
    if errors:
        raise RuntimeError(errors[0])
    lat = sorted(x for l in lats for x in l)
    total = max(ends) - t["start"]
    calls = len(lat)
    return {
        "threads": n,
        "calls": calls,
        "items": calls * items_per_call,
        "seconds": total,
        "items_per_s": calls * items_per_call / total,
        "calls_per_s": calls / total,
        "p50_ms": 1e3 * statistics.median(lat),
        "p99_ms": 1e3 * lat[min(calls - 1, int(math.ceil(0.99 * calls)) - 1)],
    }


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.environ.get("STREAMPOOL_MODEL_DIR"),
                    help="sentence-transformers dir (default $STREAMPOOL_MODEL_DIR; absent: random weights)")
    ap.add_argument("--dtype", choices=list(DTYPES), default="f32")
    ap.add_argument("--threads", default="1,2,4,8,16,32,64")
    ap.add_argument("--batch", default="512", help="batched ceiling's batch, or a comma list (0: skip)")
    ap.add_argument("--compile-modes", default="default",
                    help="torch.compile modes for the compile mode, comma-separated")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=2.0, help="timed duration per point")
    ap.add_argument("--warmup", type=float, default=0.5, help="warm-up per point, seconds")
    ap.add_argument("--modes", default="eager,graph,batched",
                    help="of eager, graph, batched, compile (batched under torch.compile too)")
    ap.add_argument("--impl", choices=["transformers", "functional"], default="transformers",
                    help="the model as transformers' BertModel, or as plain functions over its "
                         "weights (SDPA's flash kernel under graphs and torch.compile too)")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    threads = [int(x) for x in args.threads.split(",") if x]
    batches = [int(x) for x in str(args.batch).split(",") if x and int(x) > 0]
    compile_modes = [m for m in args.compile_modes.split(",") if m]
    modes = [m for m in args.modes.split(",") if m]
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to PyTorch")

    dev = torch.device("cuda")
    dtype = DTYPES[args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    t_load = time.perf_counter()
    bert, source, stored, arch = load_bert(args.model_dir, dtype, dev)
    pooling = pooling_of(args.model_dir)
    forward = make_forward(bert, pooling)
    reference_forward = forward
    if args.impl == "functional":
        if not hasattr(bert, "encoder") or not hasattr(bert.encoder, "layer"):
            raise SystemExit("--impl functional: BERT models only")
        forward = make_functional_forward(bert, pooling)
    props = torch.cuda.get_device_properties(dev)
    import transformers

    print(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
          f"{props.name} ({props.multi_processor_count} SMs), {args.dtype}"
          f"{' (TF32 off)' if args.dtype == 'f32' else ''}, seq {args.seq}")
    print(f"weights: {source}" + (f" (stored as {','.join(stored)}, cast to {args.dtype})" if stored else ""))
    print(f"arch: {arch}, {pooling} pooling; load {time.perf_counter() - t_load:.1f}s; "
          f"{args.warmup}s warm-up + {args.seconds}s per point", flush=True)

    # Sanity: graph replay gives eager's embeddings, and they have unit norm.
    check = {}
    with torch.inference_mode():
        ids, mask = make_inputs(1, args.seq, arch["vocab"], dtype, dev, 1)
        ref = forward(ids, mask).float()
        try:
            g = GraphWorker(forward, ids, mask)
            g.step()
            check["graph_vs_eager_max_abs"] = (g.out.float() - ref).abs().max().item()
            del g
        except Exception as e:  # noqa: BLE001
            check["graph_error"] = repr(e)
        check["norm"] = ref.norm(dim=-1).item()
        check["impl"] = args.impl
        if args.impl == "functional":
            check["functional_vs_transformers_max_abs"] = (
                reference_forward(ids, mask).float() - ref).abs().max().item()
        check["first_values"] = [round(x, 5) for x in ref[0, :4].tolist()]
    print(f"check: {check}", flush=True)

    results = {}
    errors = {}

    def table_row(mode, r):
        unit = "seq/s" if mode.startswith("batched") else "req/s"
        print(f"{mode:<14}{r['threads']:>8}{r['items_per_s']:>12.0f} {unit:<6}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}",
              flush=True)

    print(f"\n{'mode':<14}{'threads':>8}{'throughput':>19}{'p50 ms':>9}{'p99 ms':>9}")
    for mode in ("eager", "graph"):
        if mode not in modes:
            continue
        results[mode] = {}
        pool = []  # worker i (its stream, inputs and, for graphs, its captured graph) serves every point
        for n in threads:
            try:
                with torch.inference_mode():
                    while len(pool) < n:
                        x = make_inputs(1, args.seq, arch["vocab"], dtype, dev, 100 + len(pool))
                        pool.append(EagerWorker(forward, *x) if mode == "eager" else GraphWorker(forward, *x))
                r = run_point(pool[:n], 1, args.seconds, args.warmup)
                results[mode][str(n)] = r
                table_row(mode, r)
            except Exception as e:  # noqa: BLE001 - keep going: one run must report what it can
                errors[f"{mode}/{n}"] = repr(e)
                print(f"{mode:<14}{n:>8}  FAILED: {e!r}", flush=True)
                traceback.print_exc()
        pool = None
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    for batch in (batches if "batched" in modes else []):
        def key(mode):
            return mode if len(batches) == 1 else f"{mode}@{batch}"
        batched = ["batched_eager", "batched_graph"]
        if "compile" in modes:
            batched += [f"batched_compile_{m}" for m in compile_modes]
        for mode in batched:
            w = x = None
            try:
                with torch.inference_mode():
                    x = make_inputs(batch, args.seq, arch["vocab"], dtype, dev, 7)
                    if mode.startswith("batched_compile_"):
                        # Compiled afresh per mode and batch (no dynamic shapes); its first calls
                        # compile (not timed: the point's warm-up runs after them).
                        cmode = mode[len("batched_compile_"):]
                        torch._dynamo.reset()
                        t0 = time.perf_counter()
                        w = EagerWorker(torch.compile(forward, mode=cmode, dynamic=False), *x)
                        for _ in range(3):
                            w.step()
                        print(f"torch.compile({cmode}), batch {batch}: "
                              f"{time.perf_counter() - t0:.0f}s to compile", flush=True)
                    else:
                        w = EagerWorker(forward, *x) if mode == "batched_eager" else GraphWorker(forward, *x)
                r = run_point([w], batch, args.seconds, args.warmup)
                r["batch"] = batch
                results[key(mode)] = r
                table_row(key(mode), r)
            except Exception as e:  # noqa: BLE001
                errors[key(mode)] = repr(e)
                print(f"{key(mode):<14}{1:>8}  FAILED: {e!r}", flush=True)
                traceback.print_exc()
            finally:
                w = x = None
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
        compiled = [key(f"batched_compile_{m}") for m in compile_modes]
        compiled = [m for m in compiled if m in results]
        if compiled:
            m = max(compiled, key=lambda m: results[m]["items_per_s"])
            results[key("batched_compile")] = dict(results[m], mode=m)

    best = {}
    for mode in ("eager", "graph"):
        if results.get(mode):
            n, r = max(results[mode].items(), key=lambda kv: kv[1]["items_per_s"])
            best[mode] = {"threads": int(n), "req_per_s": r["items_per_s"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}
    bb = [m for m in ("batched_eager", "batched_graph") if m in results]
    if bb:
        m = max(bb, key=lambda m: results[m]["items_per_s"])
        best["batched"] = {"mode": m, "batch": batches[0], "seq_per_s": results[m]["items_per_s"],
                           "p50_ms": results[m]["p50_ms"]}
    if "batched_compile" in results:
        r = results["batched_compile"]
        best["batched_compile"] = {"mode": r.get("mode", "batched_compile"), "batch": batches[0],
                                   "seq_per_s": r["items_per_s"], "p50_ms": r["p50_ms"]}
    print("\nbest: " + "; ".join(
        f"{k} {v.get('req_per_s', v.get('seq_per_s')):.0f} {'seq/s' if k.startswith('batched') else 'req/s'}"
        + (f" @{v['threads']} threads" if "threads" in v else f" ({v['mode']})")
        for k, v in best.items()))
    if errors:
        print(f"errors: {errors}")

    out = {
        "peer": "pytorch",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "gpu": props.name,
        "sms": props.multi_processor_count,
        "dtype": args.dtype,
        "tf32": torch.backends.cuda.matmul.allow_tf32,
        "seq": args.seq,
        "batch": batches[0] if len(batches) == 1 else batches,
        "seconds_per_point": args.seconds,
        "warmup_per_point": args.warmup,
        "impl": args.impl,
        "weights": source,
        "weights_stored_as": stored,
        "random_weights": stored is None,
        "arch": arch,
        "check": check,
        "results": results,
        "best": best,
        "errors": errors,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}")
    return 1 if errors and not results else 0


if __name__ == "__main__":
    sys.exit(main())
