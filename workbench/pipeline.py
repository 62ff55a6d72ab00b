"""Compose the layers into one pipeline from a `PipelineConfig`.

input guard -> semantic router -> route switch [retriever -> re-ranker -> generator] -> output guard
"""

from __future__ import annotations

from workbench.core.protocols import Embedder
from workbench.core.schema import PipelineConfig
from workbench.core.stage import Pipeline, RouteSwitch, StageCache
from workbench.guardrails import InputGuardStage, OutputGuardStage
from workbench.models.endpoints import EndpointPool
from workbench.models.generator import GeneratorConfig, GeneratorStage
from workbench.retrieval import RerankerStage, RetrievalIndex, RetrieverStage
from workbench.routing import SemanticRouter


def _route_pipeline(
    config: PipelineConfig,
    route: str,
    embedder: Embedder,
    index: RetrievalIndex,
    pool: EndpointPool,
    cache: StageCache | None,
) -> Pipeline:
    retrieval = config.route_retrieval(route)
    spec = config.routing.routes[route]
    generator = GeneratorConfig(
        endpoint=config.route_model(route),
        prompt=config.prompts[config.route_prompt(route)],
        output=spec.output,
        json_schema=spec.json_schema,
        max_context_chars=config.generation.max_context_chars,
    )
    return Pipeline(
        [
            RetrieverStage(retrieval, index, embedder),
            RerankerStage(retrieval.reranker, embedder, index),
            GeneratorStage(generator, pool),
        ],
        name=f"route:{route}",
        cache=cache,
    )


def build_pipeline(
    config: PipelineConfig,
    embedder: Embedder,
    index: RetrievalIndex,
    pool: EndpointPool,
    cache: StageCache | None = None,
) -> Pipeline:
    routes = {name: _route_pipeline(config, name, embedder, index, pool, cache) for name in config.routing.routes}
    return Pipeline(
        [
            InputGuardStage(config.guardrails.input, embedder=embedder),
            SemanticRouter(config.routing, embedder),
            RouteSwitch(routes, config.routing.default),
            OutputGuardStage(config.guardrails.output, routes=config.routing.routes, embedder=embedder),
        ],
        name=config.name,
        cache=cache,
    )
