from pathlib import Path

import pytest

from workbench.core.config import load_yaml
from workbench.core.errors import RoutingError
from workbench.core.schema import PipelineConfig, RouteConfig, RoutingConfig
from workbench.core.state import RequestState
from workbench.routing import SemanticRouter, validate_route

ROOT = Path(__file__).resolve().parents[2]


def _config(threshold: float = 0.3) -> RoutingConfig:
    return RoutingConfig(
        default="general",
        threshold=threshold,
        routes={
            "general": RouteConfig(utterances=["When did the war start", "Who built the bridge"]),
            "structured": RouteConfig(
                utterances=["Return a JSON object with the answer", "Output structured JSON data"], output="json"
            ),
            "billing": RouteConfig(utterances=["refund my invoice payment", "billing charge on my card"]),
            "fallback_only": RouteConfig(),
        },
    )


def test_picks_the_route_with_the_nearest_utterance(embedder):
    router = SemanticRouter(_config(), embedder)
    out = router.run(RequestState(query="Please return JSON for the answer"))
    assert out.route == "structured"
    assert out.route_score is not None and out.route_score >= 0.3
    assert router.run(RequestState(query="Why is there a charge on my card?")).route == "billing"
    assert router.run(RequestState(query="Who built the Brooklyn bridge?")).route == "general"


def test_falls_back_to_default_below_threshold(embedder):
    router = SemanticRouter(_config(threshold=0.9), embedder)
    out = router.run(RequestState(query="Please return JSON for the answer"))
    assert out.route == "general"
    assert out.route_score is not None and out.route_score < 0.9
    unrelated = SemanticRouter(_config(), embedder).run(RequestState(query="zebra quantum pottery"))
    assert unrelated.route == "general" and unrelated.route_score == pytest.approx(0.0)


def test_route_without_utterances_is_only_reachable_as_default(embedder):
    config = RoutingConfig(
        default="fallback_only",
        threshold=0.5,
        routes={"fallback_only": RouteConfig(), "billing": RouteConfig(utterances=["refund my invoice"])},
    )
    router = SemanticRouter(config, embedder)
    assert router.scores("fallback only please") == {"billing": 0.0}
    assert router.run(RequestState(query="fallback only please")).route == "fallback_only"
    assert router.run(RequestState(query="refund my invoice")).route == "billing"


def test_no_utterances_anywhere_routes_to_default_without_score(embedder):
    router = SemanticRouter(RoutingConfig(), embedder)
    out = router.run(RequestState(query="anything"))
    assert (out.route, out.route_score) == ("general", None)
    assert embedder.batches == []


def test_utterances_are_embedded_once_and_lazily(embedder):
    router = SemanticRouter(_config(), embedder)
    assert embedder.batches == []  # constructor is cheap
    router.run(RequestState(query="one"))
    router.run(RequestState(query="two"))
    utterance_batches = [c for c in embedder.batches if len(c) > 1]
    assert len(utterance_batches) == 1 and len(utterance_batches[0]) == 6


def test_input_state_is_not_mutated(embedder):
    state = RequestState(query="Return a JSON object with the answer")
    SemanticRouter(_config(), embedder).run(state)
    assert state.route is None


def test_cache_key_changes_with_utterances(embedder):
    state = RequestState(query="q")
    a = SemanticRouter(_config(), embedder).cache_key(state)
    routes = dict(_config().routes)
    routes["billing"] = RouteConfig(utterances=["refund please"])
    b = SemanticRouter(_config().model_copy(update={"routes": routes}), embedder).cache_key(state)
    assert a != b
    assert a == SemanticRouter(_config(), embedder).cache_key(state)
    assert SemanticRouter.reads == ("query",) and SemanticRouter.writes == ("route", "route_score")


def test_validate_route_lists_valid_routes():
    config = _config()
    assert validate_route(config, "billing") == "billing"
    with pytest.raises(RoutingError, match=r"unknown route 'nope'; valid routes: billing, fallback_only, general"):
        validate_route(config, "nope")


async def test_arun_matches_run(embedder):
    router = SemanticRouter(_config(), embedder)
    out = await router.arun(RequestState(query="Output structured JSON data"))
    assert out.route == "structured"


def test_quickstart_routes_with_fake_embedder(embedder):
    config = load_yaml(PipelineConfig, ROOT / "experiments" / "quickstart.yaml")
    router = SemanticRouter(config.routing, embedder)
    assert router.run(RequestState(query="Return the answer as a JSON object")).route == "structured"
    assert router.run(RequestState(query="In what year did the Normans reach Normandy?")).route == "general"
