"""Model selection within a route: a `ModelSelector` stage picks the model, a `ModelSwitch`
runs that model's sub-pipeline.

    route pipeline: retriever -> re-ranker -> ModelSelector -> ModelSwitch{model: [generator]}

The selector writes `model_choice` (model, policy, reason, complexity) into the request state,
so runs, traces and logs see which model answered and why. Each candidate has its own generator
stage, whose config names its endpoint: the decision is therefore part of the cache key of
everything that depends on it, and a cached answer of one model is never served for another.

Measured figures come from a model card (`ModelCard`: YAML or JSON, `models: {name: {cost_per_1k,
p50_ms, p95_ms, quality: {route: value}}}`) named by `selection.card`, overridden per model by
`selection.figures`; a model's cost defaults to its endpoint's configured cost per 1k tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.core.config import load_yaml
from workbench.core.registry import Registry
from workbench.core.schema import ModelCard, ModelFigures, SelectionConfig
from workbench.core.stage import Pipeline, RouteSwitch, Stage, StageCache
from workbench.core.state import RequestState
from workbench.routing.complexity import request_features
from workbench.routing.policies import Candidate, SelectionPolicy, describe, policy_registry


def load_model_card(path: str | Path) -> ModelCard:
    """A model card file (YAML or JSON); a bad one is a one-line `ConfigError` naming the file and key."""
    return load_yaml(ModelCard, path)


def resolve_candidates(
    config: SelectionConfig, route: str, costs: Mapping[str, float], card: ModelCard | None = None
) -> list[Candidate]:
    """Each candidate's figures for `route`: the card's, overridden field by field by `figures`."""
    out = []
    for model in config.models:
        figures = card.models.get(model, ModelFigures()) if card else ModelFigures()
        override = config.figures.get(model)
        if override is not None:
            figures = figures.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})
        cost = figures.cost_per_1k if figures.cost_per_1k is not None else costs.get(model, 0.0)
        out.append(Candidate(model, cost, figures.p95_ms, figures.quality.get(route)))
    return out


class ModelSelector(Stage):
    """Picks the route's model for this request with the configured policy; writes `model_choice`.

    Built eagerly (the card is one small file): an unknown policy, an unreadable card or
    figures a policy needs but lacks fail when the pipeline is built, not on the first request.
    """

    kind = "model_selector"
    reads = ("query", "route", "chunks")
    writes = ("model_choice",)
    config: SelectionConfig

    def __init__(
        self,
        config: SelectionConfig,
        route: str,
        costs: Mapping[str, float],
        *,
        root: str | Path = ".",
        registry: Registry | None = None,
    ) -> None:
        super().__init__(config)
        card = load_model_card(Path(root) / config.card) if config.card else None
        self.candidates = resolve_candidates(config, route, costs, card)
        policy_class = (registry or policy_registry()).resolve(config.policy)
        self.policy: SelectionPolicy = policy_class(config, route, self.candidates)
        self.route = route

    def config_fingerprint(self) -> Any:
        # The card's figures decide the choice as much as the config does.
        figures = describe(self.candidates)
        return {"selection": self.config.model_dump(mode="json"), "route": self.route, "figures": figures}

    def run(self, state: RequestState) -> RequestState:
        choice = self.policy.choose(request_features(state.query, state.chunks))
        return state.model_copy(update={"model_choice": choice})


class ModelSwitch(RouteSwitch):
    """Runs the sub-pipeline of the model the selector chose (the first candidate if none was)."""

    kind = "model_switch"
    reads = ("model_choice",)

    def _pick(self, state: RequestState) -> Pipeline:
        chosen = state.model_choice.model if state.model_choice is not None else self.default
        return self.routes.get(chosen) or self.routes[self.default]


def selection_stages(
    config: SelectionConfig,
    route: str,
    candidate_stages: Callable[[str], Sequence[Stage]],
    costs: Mapping[str, float],
    *,
    cache: StageCache | None = None,
    root: str | Path = ".",
    registry: Registry | None = None,
) -> list[Stage]:
    """[selector, switch] for a route: `candidate_stages(model)` builds the stages one candidate runs."""
    pipelines = {
        model: Pipeline(list(candidate_stages(model)), name=f"route:{route}:{model}", cache=cache)
        for model in config.models
    }
    selector = ModelSelector(config, route, costs, root=root, registry=registry)
    return [selector, ModelSwitch(pipelines, config.models[0])]
