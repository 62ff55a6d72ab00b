"""Compose the layers into one pipeline from a `PipelineConfig`.

input guard -> semantic router -> route switch [retriever -> re-ranker -> generator] -> output guard

A route with a `tool` is [generator -> tool] instead: the model writes the tool's arguments.
A route with a `selection` picks its model per request: [.. -> model selector -> model switch
{model: [generator ..]}]; a route with a `reply` answers with that text and calls no model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from workbench.core.protocols import Embedder
from workbench.core.registry import Registry
from workbench.core.schema import PipelineConfig
from workbench.core.stage import Pipeline, RouteSwitch, Stage, StageCache
from workbench.guardrails import InputGuardStage, OutputGuardStage
from workbench.models.endpoints import EndpointPool
from workbench.models.generator import GeneratorConfig, GeneratorStage
from workbench.retrieval import RerankerStage, RetrievalIndex, RetrieverStage
from workbench.routing import ReplyConfig, ReplyStage, SemanticRouter, selection_stages
from workbench.tools import ToolContext, ToolStage, build_tool, tool_prompt


def _generation(
    config: PipelineConfig,
    route: str,
    stages: Callable[[str], list[Stage]],
    cache: StageCache | None,
    root: Path,
) -> list[Stage]:
    """The route's generation stages for its one model, or selector + switch over its candidates."""
    selection = config.routing.routes[route].selection
    if selection is None:
        return stages(config.route_model(route))
    costs = {name: ep.cost.input_per_1k + ep.cost.output_per_1k for name, ep in config.models.items()}
    return selection_stages(selection, route, stages, costs, cache=cache, root=root)


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
    def stages(model: str) -> list[Stage]:
        arguments = GeneratorConfig(
            endpoint=model,
            prompt=config.prompts[spec.prompt] if spec.prompt else tool_prompt(tool),
            output="json",
            json_schema=tool.json_schema(),
            max_context_chars=config.generation.max_context_chars,
        )
        return [GeneratorStage(arguments, pool), ToolStage(tool)]

    return Pipeline(_generation(config, route, stages, cache, tools.root), name=f"route:{route}", cache=cache)


def _route_pipeline(
    config: PipelineConfig,
    route: str,
    embedder: Embedder,
    index: RetrievalIndex,
    pool: EndpointPool,
    cache: StageCache | None,
    root: Path,
) -> Pipeline:
    retrieval = config.route_retrieval(route)
    spec = config.routing.routes[route]
    if spec.reply is not None:
        return Pipeline([ReplyStage(ReplyConfig(text=spec.reply))], name=f"route:{route}", cache=cache)

    def stages(model: str) -> list[Stage]:
        generator = GeneratorConfig(
            endpoint=model,
            prompt=config.prompts[config.route_prompt(route)],
            output=spec.output,
            json_schema=spec.json_schema,
            max_context_chars=config.generation.max_context_chars,
        )
        return [GeneratorStage(generator, pool)]

    return Pipeline(
        [
            RetrieverStage(retrieval, index, embedder),
            RerankerStage(retrieval.reranker, embedder, index),
            *_generation(config, route, stages, cache, root),
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
        else _route_pipeline(config, name, embedder, index, pool, cache, Path(root))
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
