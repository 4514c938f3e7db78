"""Embed a corpus larger than one machine with Ray Data: each Ray worker holds one
``streampool.Model`` (loaded once, shared by the worker's threads), and ``map_batches`` streams
the corpus through the workers of the cluster.

    python python/examples/ray_corpus.py corpus.jsonl vectors/      # on a Ray cluster, or locally

The input is JSON Lines with a ``text`` field; the output, Parquet files of ``text`` and
``embedding`` columns.
"""

from __future__ import annotations

import sys

import numpy as np

import streampool


class Embedder:
    """One model per Ray worker (Ray constructs the class once per actor)."""

    def __init__(self, model: str | None = None, device: str = "auto") -> None:
        self.model = streampool.Model(model, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        batch["embedding"] = list(self.model.embed(texts))
        return batch


def embed_dataset(dataset, model: str | None = None, device: str = "auto", workers: int = 2):
    """``dataset`` (a Ray Dataset with a ``text`` column) with an ``embedding`` column added."""
    return dataset.map_batches(
        Embedder,
        fn_constructor_kwargs={"model": model, "device": device},
        batch_size=256,
        concurrency=workers,
    )


def main(source: str, destination: str) -> None:
    import ray

    ray.init()
    embedded = embed_dataset(ray.data.read_json(source))
    embedded.write_parquet(destination)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
