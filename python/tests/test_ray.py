"""The Ray Data example in Ray's local mode: every row gets the embedding the model gives alone.
Skipped, visibly, where Ray is not installed."""

import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[data]')")

import streampool  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "minilm_reference.json"


def load_example():
    spec = importlib.util.spec_from_file_location("ray_corpus", EXAMPLES / "ray_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_corpus"] = module
    spec.loader.exec_module(module)
    return module


def test_ray_data_embeds_every_row_as_the_model_does():
    example = load_example()
    texts = [c["text"] for c in json.loads(FIXTURE.read_text())["cases"]]
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        dataset = ray.data.from_items([{"text": t} for t in texts])
        rows = example.embed_dataset(dataset, device="cpu", workers=2).take_all()
    finally:
        ray.shutdown()
    want = dict(zip(texts, streampool.Model(device="cpu").embed(texts)))
    assert sorted(r["text"] for r in rows) == sorted(texts)
    for row in rows:
        assert np.abs(np.asarray(row["embedding"]) - want[row["text"]]).max() <= 1e-5
