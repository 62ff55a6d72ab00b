import pytest

from workbench.core.schema import RouteConfig
from workbench.core.state import Chunk
from workbench.testing.embedders import HashingEmbedder


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(512)


@pytest.fixture
def routes() -> dict[str, RouteConfig]:
    return {
        "general": RouteConfig(utterances=["When did it happen?"]),
        "structured": RouteConfig(
            utterances=["Return JSON"],
            output="json",
            json_schema={
                "type": "object",
                "required": ["answer"],
                "properties": {"answer": {"type": "string"}, "found": {"type": "boolean"}},
            },
        ),
    }


@pytest.fixture
def chunks() -> tuple[Chunk, ...]:
    texts = [
        "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
        "a region in France.",
        "Rollo, a Viking leader, agreed to swear fealty to King Charles III of West Francia in 911.",
    ]
    return tuple(Chunk(chunk_id=f"c{i}", doc_id="normans", text=t, start=0, end=len(t)) for i, t in enumerate(texts))
