import pytest

from workbench.testing.embedders import HashingEmbedder

_STOP = {"the", "a", "an", "as", "for", "this", "with", "me", "of", "to", "is", "was", "did", "give", "what"}


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(256, stopwords=_STOP)
