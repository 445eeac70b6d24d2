"""Text embeddings that work offline: the default is a static subword model whose weights ship in a PyPI package.

``static`` (default): the 32,000 x 256 token-embedding table WordLlama (``wordllama`` on PyPI) trained for
sentence similarity, read straight from the package's files (safetensors + a Hugging Face tokenizer) and
average-pooled, so embedding a prompt costs about 0.2 ms on one core and needs no network and no model server.
Subword tokens make it tolerant of typos and inflections. Vectors are L2-normalised float32, so the dot product
of two vectors is their cosine similarity.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from promptops.errors import ValidationProblem

DIMENSIONS = 256
MAX_TOKENS = 2048  # a prompt longer than this is embedded from its first 2,048 tokens
_JINJA = re.compile(r"\{[{%#]-?|-?[}%#]\}")
_SPACE = re.compile(r"\s+")


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> NDArray[np.float32]: ...


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"The {package!r} package is not installed (it ships the search embedding weights)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def clean(text: str) -> str:
    """Template syntax is not meaning: ``{{ review }}`` embeds as ``review``."""
    return _SPACE.sub(" ", _JINJA.sub(" ", text)).strip()


class StaticEmbedder:
    name = "static-wordllama-l2-256"
    dimensions = DIMENSIONS

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = _package_dir("wordllama")
        table = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))["embedding.weight"]
        self._table = np.ascontiguousarray(table[:, :DIMENSIONS], dtype=np.float32)
        self._tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([clean(t) for t in texts], add_special_tokens=False)
        for row, encoding in enumerate(encodings):
            ids = encoding.ids[:MAX_TOKENS]
            if not ids:
                continue
            vector = self._table[ids].mean(axis=0)
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                out[row] = vector / norm
        return out


_lock = threading.Lock()
_embedders: dict[str, Embedder] = {}
MODELS = ("static",)


def embedder(name: str = "static") -> Embedder:
    """The embedder called ``name``, loaded once per process (about 20 ms, 32 MB)."""
    if name not in MODELS:
        raise ValidationProblem(
            f"Unknown embedding model {name!r}: use one of {', '.join(MODELS)}",
            code="unknown_embedding_model",
        )
    with _lock:
        found = _embedders.get(name)
        if found is None:
            found = _embedders[name] = StaticEmbedder()
        return found


def to_bytes(vector: NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> NDArray[np.float32]:
    return np.frombuffer(blob, dtype=np.float32)
