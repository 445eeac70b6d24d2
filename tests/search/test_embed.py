"""The search embedding models: the numpy all-MiniLM-L6-v2 encoder against vectors made by the reference
implementation (Hugging Face transformers with PyTorch, mean pooling: tests/search/data/minilm_reference.json),
long prompts, empty text, and the model setting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from promptops.errors import ValidationProblem
from promptops.search import embed
from promptops.search.index import make_vectors

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())


def test_minilm_matches_the_reference_implementation() -> None:
    vectors = embed.embedder("minilm").embed(REFERENCE["texts"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.abs(vectors - np.array(REFERENCE["vectors"])).max() < 1e-5


def test_minilm_reads_meaning_not_only_words() -> None:
    model = embed.embedder("minilm")
    a, b, c = model.embed(
        [
            "How bad is it? Rate how urgent this customer ticket is: P1 means everything is on fire.",
            "Classify the urgency of a support ticket as P1, P2 or P3.",
            "Write a haiku about autumn leaves.",
        ]
    )
    assert a @ b > 0.5 > a @ c


def test_long_prompts_are_embedded_whole_in_windows() -> None:
    model = embed.embedder("minilm")
    head = "Summarise the customer's support ticket in two sentences for the on-call engineer. " * 30
    tail = "Then translate the summary into French and list every product the customer names. " * 30
    whole, first = model.embed([head + tail, head])
    assert abs(float(np.linalg.norm(whole)) - 1.0) < 1e-5
    assert float(whole @ first) < 0.99  # the text after the first 256 tokens counts
    assert not model.embed([""]).any() and not model.embed(["{{ }}"]).any()  # nothing to embed: zeros
    assert model.embed([]).shape == (0, 384)


def test_static_model_and_the_setting() -> None:
    static = embed.embedder("static")
    assert static.embed(["refund email"]).shape == (1, 256)
    with pytest.raises(ValidationProblem) as caught:
        embed.configure("bert-large")
    assert caught.value.code == "unknown_embedding_model"
    try:
        embed.configure("static")
        assert embed.embedder() is static
        search, content = make_vectors([("support/triage-ticket", "Sort tickets", "Classify {{ ticket }}.")])
        assert search.shape == content.shape == (1, 256)
    finally:
        embed.configure("minilm")
    assert embed.embedder().name == "minilm-l6-v2"


def test_search_vectors_add_the_name_to_the_content() -> None:
    search, content = make_vectors(
        [("billing/refund-reply", "", "Answer the customer."), ("support/triage", "", "Answer the customer.")]
    )
    assert np.allclose(content[0], content[1])  # the same text
    assert float(search[0] @ search[1]) < 0.99  # told apart by their names
    assert np.allclose(np.linalg.norm(search, axis=1), 1.0, atol=1e-5)
