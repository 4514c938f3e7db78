"""streampool: sentence embeddings from many Python threads at once.

One :class:`Model` is one model loaded once on one device (CPU, an NVIDIA GPU, or an Apple GPU),
behind a batching engine whose workers each run on their own stream of the device. Any number
of Python threads may call the same model at the same time: every call releases the GIL for
the whole computation, and the texts of all threads are batched together.

>>> import streampool
>>> model = streampool.Model()                      # all-MiniLM-L6-v2, on the GPU if there is one
>>> model.embed(["A man is eating food."]).shape
(1, 384)
>>> model.encode("A man is eating food.").shape     # sentence-transformers' encode
(384,)

The results are sentence-transformers' (cosine >= 0.99999 in float32 on its reference texts).
"""

from __future__ import annotations

import os
from typing import Any, List, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import _streampool

__all__ = ["Model", "ModelInfo", "FileStats", "__version__"]
__version__: str = _streampool.__version__


class ModelInfo(NamedTuple):
    """What :attr:`Model.info` reports."""

    name: str
    """The model's name (its directory's)."""
    dimension: int
    """Length of each embedding."""
    max_tokens: int
    """Tokens per text the model reads; longer texts are truncated."""
    device: str
    """The device, in words ("NVIDIA H100 80GB HBM3", "cpu (8 cores)", ...)."""
    backend: str
    """"cpu", "cuda" or "metal"."""
    dtype: str
    """Storage type of weights and activations ("f32", "f16", ...)."""
    workers: int
    """Streams the engine runs batches on at once."""


class FileStats(NamedTuple):
    """What :meth:`Model.embed_file` did."""

    texts: int
    tokens: int
    seconds: float


_INPUT_FORMATS = {".jsonl": "jsonl", ".json": "json", ".txt": "text"}


class Model:
    """A sentence-embedding model shared by any number of threads.

    Args:
        model: a sentence-transformers model directory, the name of a model ``streampool
            fetch-model`` knows (downloaded into the cache on first use), or a Hugging Face Hub
            id ``ORG/NAME``. Default: all-MiniLM-L6-v2.
        device: ``"auto"`` (CUDA, else Metal, else the CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ``"metal"``; several GPUs, ``"cuda:0,2"`` or ``"cuda:all"``: a copy of
            the model on each, one engine over them all.
        dtype: ``"auto"`` (float16 on a GPU, float32 on the CPU), ``"float32"``, ``"tf32"``,
            ``"float16"`` or ``"bfloat16"`` (what the device runs).
        workers: streams the engine runs batches on at once (default: 4 on a GPU, 1 on the
            CPU).
        quiet: no download progress on stderr.

    Raises:
        ValueError: an unknown model, device or dtype.
        RuntimeError: the model or the device cannot be loaded.
    """

    def __init__(
        self,
        model: Optional[Union[str, os.PathLike]] = None,
        device: str = "auto",
        dtype: str = "auto",
        workers: Optional[int] = None,
        quiet: bool = True,
    ) -> None:
        path = None if model is None else os.fspath(model)
        self._native = _streampool.Model(path, device, dtype, workers, quiet)
        self._info = ModelInfo(*self._native.info)
        # The native method itself, with no Python frame in between: a busy model's threads
        # take turns on the GIL for every Python-level step of a call.
        self.embed = self._native.embed

    @property
    def info(self) -> ModelInfo:
        """Name, dimension, maximum tokens, device, backend, dtype and workers."""
        return self._info

    @property
    def max_seq_length(self) -> int:
        """Tokens per text the model reads (sentence-transformers' name)."""
        return self._info.max_tokens

    def get_sentence_embedding_dimension(self) -> int:
        """Length of each embedding (sentence-transformers' name)."""
        return self._info.dimension

    def embed(
        self,
        texts: Union[str, Sequence[str]],
        *,
        prompt: Optional[str] = None,
        prompt_name: Optional[str] = None,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """Embeddings of ``texts``: float32, ``[len(texts), dimension]``, in input order.

        A single ``str`` is one text (one row). ``prompt`` is prepended to every text, or the
        model's prompt named ``prompt_name`` (its tokens are left out of the pooling where the
        model says so). The GIL is released until the result is ready.

        Raises:
            TypeError: an item is not a ``str``.
            ValueError: a prompt name the model does not have, or a text it refuses.
        """
        # Instances call the native method directly (see __init__); this is its documentation.
        return self._native.embed(
            texts, prompt=prompt, prompt_name=prompt_name, show_progress_bar=show_progress_bar
        )

    def encode(
        self,
        sentences: Union[str, Sequence[str], None] = None,
        prompt_name: Optional[str] = None,
        prompt: Optional[str] = None,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        output_value: Optional[str] = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: Optional[str] = None,
        normalize_embeddings: bool = False,
        truncate_dim: Optional[int] = None,
        **kwargs: Any,
    ) -> Union[np.ndarray, List[np.ndarray], Any]:
        """sentence-transformers' ``encode``, with its argument names and result shapes.

        A ``str`` gives a float32 array ``[dimension]``; a list of ``n`` texts ``[n,
        dimension]``; an empty list an empty float64 array, as sentence-transformers.
        ``convert_to_tensor=True`` gives a torch tensor (needs torch); ``convert_to_numpy=False``
        a list of 1-D arrays. ``normalize_embeddings`` L2-normalises (after ``truncate_dim``).
        ``batch_size`` is accepted and not needed: batches are formed by the engine, by length.
        ``sentences`` may also be given as ``inputs=`` (sentence-transformers 6).

        Raises:
            ValueError: an ``output_value``, ``precision`` or ``device`` this package does not
                produce, or a text the model refuses.
        """
        if sentences is None:
            if "inputs" not in kwargs:
                raise TypeError("encode() needs the texts: encode(sentences) or encode(inputs=...)")
            sentences = kwargs.pop("inputs")
        if kwargs:
            raise TypeError(f"encode() got unexpected keyword arguments: {sorted(kwargs)}")
        if output_value != "sentence_embedding":
            raise ValueError(f"output_value={output_value!r}: only 'sentence_embedding' is produced")
        if precision != "float32":
            raise ValueError(f"precision={precision!r}: only 'float32' embeddings are produced")
        if device is not None:
            raise ValueError(
                f"device={device!r}: the device is chosen when the Model is created "
                f"(this one runs on {self._info.backend})"
            )
        del batch_size  # the engine batches by length
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if not texts:
            empty = np.asarray([])
            return _tensor(empty) if convert_to_tensor else empty
        vectors = self.embed(
            texts,
            prompt=prompt,
            prompt_name=prompt_name,
            show_progress_bar=bool(show_progress_bar),
        )
        if truncate_dim is not None:
            vectors = vectors[:, :truncate_dim]
        if normalize_embeddings:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        result = vectors[0] if single else vectors
        if convert_to_tensor:
            return _tensor(result)
        if not convert_to_numpy:
            return list(result) if not single else result
        return result

    def embed_file(
        self,
        path: Union[str, os.PathLike],
        output: Union[str, os.PathLike],
        format: str = "npy",
        input_format: Optional[str] = None,
        field: Optional[str] = None,
        skip_invalid: bool = False,
        npy_dtype: str = "float32",
        workers: Optional[int] = None,
        max_batch_tokens: Optional[int] = None,
        show_progress_bar: bool = False,
    ) -> FileStats:
        """Embed every text of the file ``path`` into ``output``, in input order: the corpus
        pipeline of ``streampool embed`` (tokenised on every core, packed by length, run on
        several streams at once), with this model. The corpus is streamed: any size fits.

        Args:
            path: the texts: JSON Lines (a string per line, or objects with the text in
                ``field``), one JSON array, or a text per line.
            output: where the embeddings go.
            format: ``"npy"`` (a NumPy array ``[texts, dimension]``), ``"jsonl"`` or
                ``"json"``.
            input_format: ``"jsonl"``, ``"json"`` or ``"text"``; default from the file's
                suffix (``.jsonl``, ``.json``, ``.txt``), else ``"jsonl"``.
            field: the member holding the text, for JSON Lines of objects.
            skip_invalid: skip (and report on stderr) lines that hold no text instead of
                stopping at the first.
            npy_dtype: ``"float32"`` or ``"float16"`` (with ``format="npy"``).
            workers, max_batch_tokens: as ``streampool embed``'s options.
            show_progress_bar: a progress bar on stderr.

        Raises:
            ValueError: a missing or bad input (the message names the line), a bad option.
            RuntimeError: the model or the device failed.
        """
        path = os.fspath(path)
        if input_format is None:
            input_format = _INPUT_FORMATS.get(os.path.splitext(path)[1].lower(), "jsonl")
        texts, tokens, seconds = self._native.embed_file(
            path,
            os.fspath(output),
            format,
            input_format,
            field,
            skip_invalid,
            npy_dtype,
            workers,
            max_batch_tokens,
            show_progress_bar,
        )
        return FileStats(texts, tokens, seconds)

    def __repr__(self) -> str:
        i = self._info
        return f"streampool.Model({i.name!r}, device={i.backend!r} ({i.device}), dtype={i.dtype!r})"


def _tensor(array: np.ndarray) -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("convert_to_tensor=True needs torch") from e
    return torch.from_numpy(np.ascontiguousarray(array))
