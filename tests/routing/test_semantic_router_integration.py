from pathlib import Path

import pytest

from workbench.core.config import load_yaml
from workbench.core.schema import PipelineConfig
from workbench.core.state import RequestState
from workbench.routing import SemanticRouter

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quickstart() -> PipelineConfig:
    return load_yaml(PipelineConfig, ROOT / "experiments" / "quickstart.yaml")


@pytest.fixture(scope="module")
def real_embedder(quickstart):
    pytest.importorskip("sentence_transformers")
    from workbench.models.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(quickstart.embedder)


@pytest.mark.parametrize(
    ("question", "route"),
    [
        ("Return the answer as a JSON object", "structured"),
        ("Give me structured JSON output for this", "structured"),
        ("In what country is Normandy located?", "general"),
        ("Who was the first Duke of Normandy?", "general"),
    ],
)
def test_quickstart_routes_with_real_embedder(quickstart, real_embedder, question, route):
    router = SemanticRouter(quickstart.routing, real_embedder)
    out = router.run(RequestState(query=question))
    assert out.route == route, router.scores(question)


@pytest.mark.parametrize(
    ("question", "route"),
    [
        ("What is 45 times 12?", "arithmetic"),
        ("Hey, good morning!", "chitchat"),
        ("Reserve a table for two at an Italian restaurant tonight.", "out_of_scope"),
        ("Return a JSON object with the answer: who founded the Yuan dynasty?", "structured"),
        ("In what country is Normandy located?", "factual"),
    ],
)
def test_routing_example_routes_with_real_embedder(real_embedder, question, route):
    config = load_yaml(PipelineConfig, ROOT / "experiments" / "routing.yaml")
    router = SemanticRouter(config.routing, real_embedder)
    assert router.route(question)[0] == route, router.scores(question)
