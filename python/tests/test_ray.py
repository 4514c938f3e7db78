"""The Ray Data example in Ray's local mode: every row gets the embedding the model gives alone.
Skipped, visibly, where Ray is not installed."""

import importlib
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
    sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module("ray_corpus")


def test_ray_data_embeds_every_row_as_the_model_does():
    example = load_example()
    texts = [c["text"] for c in json.loads(FIXTURE.read_text())["cases"]]
    # Ray's workers are other processes: they import the example from its folder too.
    runtime_env = {"env_vars": {"PYTHONPATH": str(EXAMPLES)}}
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env)
    try:
        dataset = ray.data.from_items([{"text": t} for t in texts])
        rows = example.embed_dataset(dataset, device="cpu", workers=2).take_all()
    finally:
        ray.shutdown()
    want = dict(zip(texts, streampool.Model(device="cpu").embed(texts)))
    assert sorted(r["text"] for r in rows) == sorted(texts)
    for row in rows:
        assert np.abs(np.asarray(row["embedding"]) - want[row["text"]]).max() <= 1e-5
