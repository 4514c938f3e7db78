"""The Python package on the CPU: sentence-transformers' vectors, encode's shapes, many threads,
errors, the corpus pipeline. Needs all-MiniLM-L6-v2 (downloaded into the cache on first use, as
the Rust tests do)."""

import concurrent.futures as cf
import gc
import json
import os
import pathlib
import select
import signal
import threading

import numpy as np
import pytest

import streampool

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = json.loads((ROOT / "fixtures" / "minilm_reference.json").read_text())
CASES = FIXTURE["cases"]
TEXTS = [c["text"] for c in CASES]
WANT = np.array([c["embedding"] for c in CASES])


def cosines(got, want):
    got = np.asarray(got, dtype=np.float64)
    return (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))


@pytest.fixture(scope="module")
def model():
    return streampool.Model(device="cpu", quiet=False)


def test_vectors_equal_sentence_transformers(model):
    got = model.embed(TEXTS)
    assert got.dtype == np.float32 and got.shape == (30, 384)
    cos = cosines(got, WANT)
    assert cos.min() >= 0.99999, cos.min()
    assert np.abs(got - WANT).max() <= 1e-4


def test_info(model):
    info = model.info
    assert info.name == "all-MiniLM-L6-v2"
    assert (info.dimension, info.max_tokens, info.backend, info.dtype) == (384, 256, "cpu", "f32")
    assert info.workers >= 1 and info.device.startswith("cpu")
    assert model.get_sentence_embedding_dimension() == 384 and model.max_seq_length == 256
    assert "all-MiniLM-L6-v2" in repr(model)


def test_encode_has_sentence_transformers_shapes_and_dtypes(model):
    one = model.encode(TEXTS[0])
    assert one.shape == (384,) and one.dtype == np.float32
    assert cosines(one[None], WANT[:1]).min() >= 0.99999
    many = model.encode(TEXTS[:3])
    assert many.shape == (3, 384) and many.dtype == np.float32
    empty = model.encode([])
    assert empty.shape == (0,) and empty.dtype == np.float64
    assert model.encode(inputs=TEXTS[:2]).shape == (2, 384)
    rows = model.encode(TEXTS[:2], convert_to_numpy=False)
    assert isinstance(rows, list) and [r.shape for r in rows] == [(384,), (384,)]
    short = model.encode(TEXTS[:2], truncate_dim=64, normalize_embeddings=True)
    assert short.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, rtol=1e-6)


def test_encode_equals_sentence_transformers_encode_where_installed(model):
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers not installed")
    reference = st.SentenceTransformer(str(model_dir()), device="cpu")
    for inputs in [TEXTS[0], TEXTS[:4], []]:
        want = reference.encode(inputs)
        got = model.encode(inputs)
        assert got.shape == want.shape and got.dtype == want.dtype
        if len(inputs):
            np.testing.assert_allclose(got, want, atol=1e-4)


def model_dir():
    home = os.environ.get("STREAMPOOL_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "streampool"
    )
    return pathlib.Path(os.environ.get("STREAMPOOL_MODEL_DIR") or pathlib.Path(home) / "all-MiniLM-L6-v2")


def test_32_threads_50_calls_each_every_result_checked(model):
    reference = model.embed(TEXTS)
    errors = []

    def caller(t):
        try:
            for i in range(50):
                k = (t * 7 + i) % len(TEXTS)
                got = model.embed([TEXTS[k]])
                diff = np.abs(got[0] - reference[k]).max()
                if diff > 1e-5:
                    errors.append(f"thread {t} call {i}: text {k} differs by {diff}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {e!r}")

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_gil_is_released_while_embedding(model):
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        before = ticks
        model.embed(TEXTS * 4)
        during = ticks - before
    finally:
        stop.set()
        counter.join()
    # Holding the GIL for the call would leave the counting thread a switch interval or two.
    assert during > 10_000, during


def test_bad_input_raises_the_right_exception(model):
    with pytest.raises(TypeError):
        model.embed(["fine", 3])
    with pytest.raises(ValueError, match="prompt"):
        model.embed(["x"], prompt_name="no-such-prompt")
    with pytest.raises(ValueError, match="output_value"):
        model.encode("x", output_value="token_embeddings")
    with pytest.raises(ValueError, match="precision"):
        model.encode("x", precision="int8")
    with pytest.raises(ValueError, match="device"):
        model.encode("x", device="cuda:0")
    with pytest.raises(TypeError):
        model.encode(["x"], no_such_argument=1)
    with pytest.raises(ValueError, match="device"):
        streampool.Model(device="tpu")
    with pytest.raises(ValueError, match="dtype"):
        streampool.Model(device="cpu", dtype="int4")
    with pytest.raises(ValueError, match="no-such-model"):
        streampool.Model("./no-such-model", device="cpu")
    with pytest.raises(ValueError, match="f16"):
        streampool.Model(device="cpu", dtype="float16")
    # The model still answers after all of that.
    assert model.embed(["still fine"]).shape == (1, 384)


def test_a_model_dropped_while_threads_use_it_is_safe():
    local = streampool.Model(device="cpu")
    want = local.embed(TEXTS[:4])
    started = threading.Barrier(9)
    results = []

    def caller(m):
        started.wait()
        for _ in range(10):
            results.append(np.abs(m.embed(TEXTS[:4]) - want).max())

    threads = [threading.Thread(target=caller, args=(local,)) for _ in range(8)]
    for t in threads:
        t.start()
    started.wait()
    del local
    gc.collect()
    for t in threads:
        t.join()
    assert len(results) == 80 and max(results) <= 1e-5


def test_embed_file_runs_the_corpus_pipeline(model, tmp_path):
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    out = tmp_path / "vectors.npy"
    stats = model.embed_file(source, out, field="body")
    assert stats.texts == 30 and stats.tokens > 30 and stats.seconds > 0
    got = np.load(out)
    assert got.shape == (30, 384) and got.dtype == np.float32
    assert cosines(got, WANT).min() >= 0.99999
    as_json = tmp_path / "vectors.jsonl"
    model.embed_file(source, as_json, format="jsonl", field="body")
    rows = [json.loads(line) for line in as_json.read_text().splitlines()]
    np.testing.assert_allclose(np.array(rows), got, atol=1e-6)


def test_several_cpu_devices_give_the_same_vectors(model, tmp_path):
    pair = streampool.Model(device="cpu:0,1")
    assert "cpu:0" in pair.info.device and "cpu:1" in pair.info.device
    np.testing.assert_allclose(pair.embed(TEXTS), model.embed(TEXTS), atol=1e-6)
    with cf.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: pair.embed([t])[0], TEXTS * 4))
    assert cosines(np.array(got), np.tile(WANT, (4, 1))).min() >= 0.99999
    source = tmp_path / "texts.txt"
    source.write_text("".join(t.replace("\n", " ") + "\n" for t in TEXTS))
    stats = pair.embed_file(source, tmp_path / "v.npy", input_format="text")
    assert stats.texts == 30
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), model.embed(TEXTS), atol=1e-6)
    with pytest.raises(ValueError, match="listed twice"):
        streampool.Model(device="cpu:1,1")


def test_embed_file_errors_name_the_problem(model, tmp_path):
    with pytest.raises(ValueError, match="missing.jsonl"):
        model.embed_file(tmp_path / "missing.jsonl", tmp_path / "out.npy")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('"first"\nnot json\n"third"\n')
    with pytest.raises(ValueError, match="line 2"):
        model.embed_file(bad, tmp_path / "out.npy")
    stats = model.embed_file(bad, tmp_path / "out.npy", skip_invalid=True)
    assert stats.texts == 2
    with pytest.raises(ValueError, match="format"):
        model.embed_file(bad, tmp_path / "out.npy", format="parquet")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this system")
def test_a_forked_child_gets_an_error_not_a_hang(model):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what embed did, then leave at once
        os.close(read)
        try:
            model.embed(["x"])
            outcome = b"returned"
        except RuntimeError as e:
            outcome = b"RuntimeError" if b"fork" in str(e).encode() else b"other RuntimeError"
        except BaseException:  # noqa: BLE001 - anything else is the failure reported
            outcome = b"other exception"
        os.write(write, outcome)
        os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        pytest.fail("the forked child's embed call hung")
    with os.fdopen(read, "rb") as r:
        outcome = r.read()
    os.waitpid(pid, 0)
    assert outcome == b"RuntimeError"
    assert model.embed(["the parent still works"]).shape == (1, 384)
