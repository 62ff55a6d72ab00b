"""Compose the layers into one pipeline from a `PipelineConfig`.

input guard -> semantic router -> route switch [retriever -> re-ranker -> generator] -> output guard

A route with a `tool` is [generator -> tool] instead: the model writes the tool's arguments.
"""

from __future__ import annotations

from pathlib import Path

from workbench.core.protocols import Embedder
from workbench.core.registry import Registry
from workbench.core.schema import PipelineConfig
from workbench.core.stage import Pipeline, RouteSwitch, StageCache
from workbench.guardrails import InputGuardStage, OutputGuardStage
from workbench.models.endpoints import EndpointPool
from workbench.models.generator import GeneratorConfig, GeneratorStage
from workbench.retrieval import RerankerStage, RetrievalIndex, RetrieverStage
from workbench.routing import SemanticRouter
from workbench.tools import ToolContext, ToolStage, build_tool, tool_prompt


def _tool_pipeline(
    config: PipelineConfig,
    route: str,
    pool: EndpointPool,
    cache: StageCache | None,
    tools: ToolContext,
    registry: Registry | None,
) -> Pipeline:
    spec = config.routing.routes[route]
    assert spec.tool is not None
    tool = build_tool(spec.tool, tools, registry)
    # No retrieval: the arguments come from the question alone, and the answer from the tool.
    arguments = GeneratorConfig(
        endpoint=config.route_model(route),
        prompt=config.prompts[spec.prompt] if spec.prompt else tool_prompt(tool),
        output="json",
        json_schema=tool.json_schema(),
        max_context_chars=config.generation.max_context_chars,
    )
    return Pipeline([GeneratorStage(arguments, pool), ToolStage(tool)], name=f"route:{route}", cache=cache)


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
    *,
    root: str | Path = ".",
    tools: Registry | None = None,
) -> Pipeline:
    """The config's pipeline; `root` is what tools resolve relative paths against (the SQL
    tool's database), `tools` a tool registry with user tools added."""
    context = ToolContext(root=Path(root))
    routes = {
        name: _tool_pipeline(config, name, pool, cache, context, tools)
        if spec.tool is not None
        else _route_pipeline(config, name, embedder, index, pool, cache)
        for name, spec in config.routing.routes.items()
    }
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
