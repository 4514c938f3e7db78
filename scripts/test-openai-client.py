#!/usr/bin/env python3
"""Checks a running `streampool serve` with the official `openai` Python package and with a plain
HTTP client (urllib): vectors of the first fixture texts against the sentence-transformers
reference (cosine >= 0.99999), in both encodings.

    scripts/test-openai-client.py --base-url http://127.0.0.1:PORT/v1 --fixture fixtures/minilm_reference.json

Exit codes: 0 when every check passes (prints `ok: ...`), 1 when one fails (prints why on
stderr), 3 when the `openai` package is not installed (prints `SKIPPED: ...`), so that a caller
can tell a skip from a failure. Run by cli/tests/openai_client.rs.
"""
import argparse
import base64
import json
import math
import struct
import sys
import urllib.error
import urllib.request

MODEL = "all-MiniLM-L6-v2"
DIM = 384
MIN_COSINE = 0.99999
TEXTS = 5
SKIP = 3


class CheckFailed(Exception):
    pass


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def decode_base64(text):
    """OpenAI's base64 encoding: the vector's little-endian f32 bytes."""
    raw = base64.b64decode(text)
    if len(raw) % 4:
        raise CheckFailed(f"base64 vector of {len(raw)} bytes, not a whole number of f32s")
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def check(label, data, cases):
    """`data`: (index, vector) pairs as answered, in answer order, for `cases` in request order."""
    if len(data) != len(cases):
        raise CheckFailed(f"{label}: {len(data)} vectors for {len(cases)} inputs")
    worst = 1.0
    for position, ((index, vector), case) in enumerate(zip(data, cases)):
        if index != position:
            raise CheckFailed(f"{label}: vector {position} has index {index}")
        if not isinstance(vector, list) or not all(isinstance(x, float) for x in vector):
            kind = type(vector).__name__
            raise CheckFailed(f"{label}: vector {position} is a {kind}, not a list of floats")
        if len(vector) != DIM:
            raise CheckFailed(f"{label}: vector {position} has {len(vector)} values, not {DIM}")
        cos = cosine(vector, case["embedding"])
        if not cos >= MIN_COSINE:
            raise CheckFailed(f"{label}: {case['text']!r}: cosine {cos:.7f} < {MIN_COSINE}")
        worst = min(worst, cos)
    return worst


def via_openai(openai, base_url, cases):
    # No retries and a short timeout: a failing server must fail the check, not stall it.
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60.0)
    texts = [c["text"] for c in cases]
    results = {}

    # No encoding_format: recent clients ask for base64 and decode it themselves (with numpy when
    # installed), so this is the path most users take; the raw response shows what was sent.
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=texts)
    sent = json.loads(raw.http_request.content or b"{}").get("encoding_format", "float")
    answer = raw.parse()
    pairs = [(d.index, list(map(float, d.embedding))) for d in answer.data]
    results[f"default (sent {sent})"] = check("openai default", pairs, cases)
    if answer.model != MODEL:
        raise CheckFailed(f"openai default: model {answer.model!r}, not {MODEL!r}")
    if not answer.usage or answer.usage.prompt_tokens <= 0:
        raise CheckFailed(f"openai default: usage {answer.usage!r}")

    answer = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    results["float"] = check("openai float", [(d.index, d.embedding) for d in answer.data], cases)

    # Asked for explicitly, base64 comes back undecoded.
    answer = client.embeddings.create(model=MODEL, input=texts, encoding_format="base64")
    for d in answer.data:
        if not isinstance(d.embedding, str):
            raise CheckFailed(f"openai base64: got a {type(d.embedding).__name__}, not a str")
    pairs = [(d.index, decode_base64(d.embedding)) for d in answer.data]
    results["base64"] = check("openai base64", pairs, cases)

    answer = client.embeddings.create(model=MODEL, input=texts[0], encoding_format="float")
    pairs = [(d.index, d.embedding) for d in answer.data]
    results["single string"] = check("openai single string", pairs, cases[:1])
    return results


def via_urllib(base_url, cases):
    body = json.dumps({
        "model": MODEL,
        "input": [c["text"] for c in cases],
        "encoding_format": "base64",
    }).encode()
    request = urllib.request.Request(
        base_url.rstrip("/") + "/embeddings",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as e:
        raise CheckFailed(f"urllib base64: HTTP {e.code}: {e.read().decode(errors='replace')}")
    if answer.get("object") != "list":
        raise CheckFailed(f"urllib base64: object {answer.get('object')!r}, not 'list'")
    data = answer.get("data") or []
    for d in data:
        if not isinstance(d.get("embedding"), str):
            raise CheckFailed(f"urllib base64: embedding is a {type(d.get('embedding')).__name__}")
    pairs = [(d.get("index"), decode_base64(d["embedding"])) for d in data]
    return {"urllib base64": check("urllib base64", pairs, cases)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True, help="the server's OpenAI base, ending in /v1")
    ap.add_argument("--fixture", required=True, help="fixtures/minilm_reference.json")
    args = ap.parse_args()

    try:
        import openai
    except ImportError:
        print("SKIPPED: the openai package is not installed")
        return SKIP

    with open(args.fixture) as f:
        cases = json.load(f)["cases"][:TEXTS]
    try:
        results = via_openai(openai, args.base_url, cases)
        results.update(via_urllib(args.base_url, cases))
    except CheckFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except openai.APIError as e:
        print(f"FAILED: the openai client: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except urllib.error.URLError as e:
        print(f"FAILED: urllib: {e}", file=sys.stderr)
        return 1
    worst = ", ".join(f"{label} {cos:.9f}" for label, cos in results.items())
    print(f"ok: openai {openai.__version__}, {len(cases)} texts, min cosine per call: {worst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
