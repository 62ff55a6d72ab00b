"""`PipelineConfig`: the one typed config a pipeline, a sweep and a bundle are made of.

Secrets appear only as the *names* of environment variables (`api_key_env`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from workbench.core.config import ConfigModel
from workbench.core.redact import secret_keys
from workbench.core.state import Action


class StoreConfig(ConfigModel):
    """Where derived data lives. Both are content-addressed, so configs can share them safely."""

    indexes: str = Field(".workbench/indexes", description="folder of retrieval indexes, one per corpus and settings")
    cache: str = Field(".workbench/stage_cache.sqlite", description="the stage cache file")


class IngestionConfig(ConfigModel):
    source: str | None = None
    chunker: Literal["sentence"] = "sentence"
    chunk_size: int = Field(256, gt=16, description="tokens per chunk")
    chunk_overlap: int = Field(32, ge=0)
    graph: Literal["heuristic"] | None = Field(
        None, description="entity/relation extractor run at ingest, needed by retrieval.graph (issue 10 §6)"
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IngestionConfig:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self


class ModelSource(ConfigModel):
    """Where local weights are: a path, or a file inside an installed Python package."""

    path: str | None = None
    package: str | None = None
    pattern: str = "*"

    @model_validator(mode="after")
    def _one_of(self) -> ModelSource:
        if (self.path is None) == (self.package is None):
            raise ValueError("give exactly one of 'path' or 'package'")
        return self


class EmbedderConfig(ConfigModel):
    provider: Literal["sentence_transformers"] = "sentence_transformers"
    source: ModelSource
    batch_size: int = Field(64, gt=0)
    normalize: bool = True
    backend: Literal["torch", "onnx"] = Field(
        "torch",
        description="onnx: the same weights exported once to ONNX and run by onnxruntime; about twice as fast "
        "on CPU for short texts, vectors equal to torch's to ~1e-6",
    )


class RerankerConfig(ConfigModel):
    kind: Literal["none", "embedding", "cross_encoder"] = "embedding"
    source: ModelSource | None = Field(None, description="cross-encoder weights (local)")
    top_k: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _source_for_cross_encoder(self) -> RerankerConfig:
        if self.kind == "cross_encoder" and self.source is None:
            raise ValueError("a cross_encoder reranker needs 'source'")
        return self


class GraphRetrievalConfig(ConfigModel):
    """Knowledge-graph retrieval: link the query's entities, walk `hops` over relations, fuse."""

    hops: int = Field(2, ge=1, le=2, description="relation hops from the query's entities")
    weight: float = Field(1.0, gt=0, description="the graph ranking's weight in fusion (bm25 and dense: 1 in RRF)")
    max_seeds: int = Field(5, gt=0, description="query entities kept, rarest first")
    fan_out: int = Field(40, gt=0, description="neighbours followed per entity and hop, rarest first")
    decay: float = Field(0.5, gt=0, le=1, description="activation kept per hop")


class RetrievalConfig(ConfigModel):
    mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    fusion: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = Field(60, gt=0)
    bm25_weight: float = Field(0.5, ge=0, le=1)
    top_k: int = Field(5, gt=0)
    candidates: int = Field(20, gt=0, description="per retriever, before fusion and re-ranking")
    reranker: RerankerConfig = RerankerConfig()
    graph: GraphRetrievalConfig | None = Field(None, description="fuse a knowledge-graph retriever; off by default")

    @model_validator(mode="after")
    def _graph_needs_hybrid(self) -> RetrievalConfig:
        if self.graph is not None and self.mode != "hybrid":
            raise ValueError(f"graph: fuses with hybrid search only, but mode is {self.mode!r}")
        return self


class Cost(ConfigModel):
    input_per_1k: float = Field(0.0, ge=0)
    output_per_1k: float = Field(0.0, ge=0)


class RetryConfig(ConfigModel):
    max_attempts: int = Field(3, ge=1)
    base_delay_s: float = Field(0.2, ge=0)
    max_delay_s: float = Field(5.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)


class BreakerConfig(ConfigModel):
    failure_rate: float = Field(0.5, gt=0, le=1)
    window: int = Field(10, gt=0, description="most recent calls considered")
    min_calls: int = Field(4, gt=0)
    cooldown_s: float = Field(30.0, ge=0)


class _EndpointBase(ConfigModel):
    cost: Cost = Cost()
    fallbacks: list[str] = []
    timeout_s: float = Field(60.0, gt=0)
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    params: dict[str, Any] = Field(default_factory=dict, description="temperature, max_tokens, ...")

    @field_validator("params")
    @classmethod
    def _no_secrets_in_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        # `params` reach MLflow, logs and bundles verbatim; a secret there would leak everywhere.
        found = secret_keys(params)
        if found:
            raise ValueError(
                f"params.{found[0]} looks like a secret; never put one in a config: keep it in an "
                "environment variable and name that variable with 'api_key_env'"
            )
        return params


class LlamaCppEndpoint(_EndpointBase):
    provider: Literal["llama_cpp"]
    source: ModelSource
    n_ctx: int = 2048
    n_threads: int | None = None


class OpenAICompatEndpoint(_EndpointBase):
    provider: Literal["openai_compat"]
    base_url: str
    model: str
    api_key_env: str | None = Field(None, description="name of the env var holding the key")
    json_mode: Literal["json_schema", "json_object"] = Field(
        "json_schema",
        description="how a JSON schema is sent: OpenAI's response_format json_schema, or "
        "json_object + schema (llama.cpp server)",
    )


class ExtractiveEndpoint(_EndpointBase):
    provider: Literal["extractive"]
    min_support: float = Field(0.2, ge=0, le=1, description="abstain below this overlap")
    max_sentences: int = Field(1, gt=0)


ModelEndpoint = Annotated[LlamaCppEndpoint | OpenAICompatEndpoint | ExtractiveEndpoint, Field(discriminator="provider")]


class PromptTemplate(ConfigModel):
    version: int = Field(1, ge=1)
    system: str = ""
    template: str = Field(description="uses {question} and {context}")

    @model_validator(mode="after")
    def _has_placeholders(self) -> PromptTemplate:
        for name in ("{question}", "{context}"):
            if name not in self.template:
                raise ValueError(f"template must contain {name}")
        return self


class RetrievalOverride(ConfigModel):
    mode: Literal["bm25", "dense", "hybrid"] | None = None
    fusion: Literal["rrf", "weighted"] | None = None
    top_k: int | None = Field(None, gt=0)
    candidates: int | None = Field(None, gt=0)
    bm25_weight: float | None = Field(None, ge=0, le=1)
    graph: GraphRetrievalConfig | None = Field(
        None, description="fuse the knowledge-graph retriever on this route (needs ingestion.graph)"
    )


class CalculatorTool(ConfigModel):
    """Arithmetic on numbers: + - * / // % ** and parentheses, evaluated without `eval`."""

    tool: Literal["calculator"]
    max_exponent: int = Field(1000, gt=0, description="the largest power allowed, so 9**9**9 cannot hang a worker")


class SqlTool(ConfigModel):
    """One read-only, parameterised SELECT over a DuckDB file (a run's `results.duckdb`, say)."""

    tool: Literal["sql"]
    database: str = Field("results/results.duckdb", description="the DuckDB file, relative to the session root")
    max_rows: int = Field(20, gt=0, description="rows returned at most; more are cut and the answer says so")
    timeout_s: float = Field(5.0, gt=0, description="the query is interrupted after this")


class ClockTool(ConfigModel):
    """The date and time now in a time zone, and date arithmetic."""

    tool: Literal["clock"]
    timezone: str = Field("UTC", description="IANA name used when the model names none")


ToolConfig = Annotated[CalculatorTool | SqlTool | ClockTool, Field(discriminator="tool")]


class ModelFigures(ConfigModel):
    """One model's measured figures (a model card entry); all optional, a policy names what it needs."""

    cost_per_1k: float | None = Field(None, ge=0, description="price per 1k tokens; default: the endpoint's cost")
    p50_ms: float | None = Field(None, ge=0)
    p95_ms: float | None = Field(None, ge=0)
    quality: dict[str, float] = Field({}, description="measured quality per route name, higher is better")


class ModelCard(ConfigModel):
    """Measured figures per model endpoint, written by a sweep or `benchmarks/bench_routing.py`."""

    models: dict[str, ModelFigures]


class ComplexityConfig(ConfigModel):
    """Request complexity = sigmoid(bias + sum of weight * feature); the strong model at or above
    `threshold`. Features: query_words, top_score, margin (top minus second chunk score)."""

    weights: dict[Literal["query_words", "top_score", "margin"], float] = {}
    bias: float = 0.0
    threshold: float = Field(0.5, ge=0, le=1)


class SelectionConfig(ConfigModel):
    """How a route picks its model per request among `models` (policies: fixed, cheapest_within,
    latency_budget, complexity; see `workbench/routing/selection.py`)."""

    policy: str = "fixed"
    models: list[str] = Field(min_length=1, description="candidate model endpoints")
    card: str | None = Field(None, description="a model card YAML/JSON file, relative to the session root")
    figures: dict[str, ModelFigures] = Field({}, description="figures per model; override the card's")
    quality_delta: float = Field(0.02, ge=0, description="cheapest_within: quality allowed below the best")
    p95_ms: float | None = Field(None, gt=0, description="latency_budget: the p95 latency a model must meet")
    prefer: Literal["cheapest", "best"] = Field("cheapest", description="latency_budget: among those that meet it")
    complexity: ComplexityConfig = ComplexityConfig()


class RouteConfig(ConfigModel):
    utterances: list[str] = []
    model: str | None = None
    prompt: str | None = None
    retrieval: RetrievalOverride = RetrievalOverride()
    output: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = None
    tool: ToolConfig | None = Field(
        None,
        description="answer with this tool: the route's model writes its arguments as JSON constrained by "
        "the tool's schema, and the tool's output is the answer",
    )
    selection: SelectionConfig | None = Field(None, description="pick the model per request; default: `model`")
    reply: str | None = Field(None, description="answer with this fixed text and call no model (out of scope)")

    @model_validator(mode="after")
    def _tool_answers_in_text(self) -> RouteConfig:
        # The model's JSON is the tool's arguments, not the answer: a schema here would be checked
        # by the json_schema guard against the tool's text output and always fail.
        if self.tool is not None and (self.output != "text" or self.json_schema is not None):
            raise ValueError("a tool route answers with the tool's text output; drop 'output' and 'json_schema'")
        if self.reply is not None and (self.tool or self.selection or self.model or self.output != "text"):
            raise ValueError("a reply route calls no model: drop 'tool', 'selection', 'model' and 'output'")
        return self


class RoutingConfig(ConfigModel):
    default: str = "general"
    threshold: float = Field(0.4, ge=-1, le=1)
    routes: dict[str, RouteConfig] = {"general": RouteConfig()}

    @model_validator(mode="after")
    def _default_exists(self) -> RoutingConfig:
        if self.default not in self.routes:
            raise ValueError(f"default route {self.default!r} is not in routes")
        return self


class _Check(ConfigModel):
    action: Action = "flag"


class MaxSizeCheck(_Check):
    check: Literal["max_size"]
    max_chars: int = Field(2000, gt=0)
    action: Action = "block"


class InjectionCheck(_Check):
    check: Literal["injection"]
    action: Action = "block"
    threshold: float = Field(0.5, gt=0, le=1)


class AttackCheck(_Check):
    """Prompt injection, jailbreaks and harmful requests: a logistic head on the pipeline's
    embedder, by default with the `injection` heuristics' score as one more feature."""

    check: Literal["attack"]
    action: Literal["block", "flag"] = "block"
    threshold: float | None = Field(
        None, gt=0, lt=1, description="block at score >= threshold; default: the head's own, fitted on its train split"
    )
    heuristics: bool = Field(
        True, description="feed the injection heuristics' score to the head (a learned combination)"
    )
    weights: str | None = Field(
        None, description="a head .npz from benchmarks/train_guard.py; default: the shipped one"
    )


class PiiCheck(_Check):
    check: Literal["pii"]
    action: Action = "mask"
    entities: list[str] = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN"]
    score_threshold: float = Field(0.5, ge=0, le=1)


class JsonSchemaCheck(_Check):
    check: Literal["json_schema"]
    action: Action = "block"


class GroundednessCheck(_Check):
    check: Literal["groundedness"]
    threshold: float = Field(0.5, ge=0, le=1)


class SafetyCheck(_Check):
    """Toxic and harmful content in answers and tool output: a logistic head on the pipeline's
    embedder, by default with a toxicity model's score as one more feature. `mask` removes the
    offending sentences (a refusal when nothing is left)."""

    check: Literal["safety"]
    action: Action = "block"
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="trigger at score >= threshold; default: the head's own, fitted on its train split",
    )
    toxicity: bool = Field(True, description="feed the toxicity model's score to the head (a learned combination)")
    weights: str | None = Field(
        None, description="a head .npz from benchmarks/train_safety.py; default: the shipped one"
    )


GuardCheck = Annotated[
    MaxSizeCheck | InjectionCheck | AttackCheck | PiiCheck | JsonSchemaCheck | GroundednessCheck | SafetyCheck,
    Field(discriminator="check"),
]


class GuardrailsConfig(ConfigModel):
    input: list[GuardCheck] = []
    output: list[GuardCheck] = []


class GenerationConfig(ConfigModel):
    model: str
    prompt: str
    max_context_chars: int = Field(4000, gt=0)


class EvaluationConfig(ConfigModel):
    """How `eval` scores this pipeline unless the command line says otherwise."""

    metrics: list[str] | None = Field(None, description="metric names; default: the offline set")
    judge: str | None = Field(None, description="a model endpoint that judges LLM metrics")
    judge_repeats: int = Field(1, ge=1, description="judge each item n times and report the variance")
    judge_max_parse_retries: int = Field(2, ge=0)
    k: int = Field(5, gt=0, description="cut-off for hit@k, recall@k and nDCG@k")


_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class PipelineConfig(ConfigModel):
    """A whole pipeline: ingestion, embedder, retrieval, routes, models, prompts and guards."""

    name: str
    store: StoreConfig = StoreConfig()
    ingestion: IngestionConfig = IngestionConfig()
    embedder: EmbedderConfig
    retrieval: RetrievalConfig = RetrievalConfig()
    generation: GenerationConfig
    models: dict[str, ModelEndpoint]
    prompts: dict[str, PromptTemplate]
    routing: RoutingConfig = RoutingConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    concurrency: int = Field(4, gt=0)

    @field_validator("name")
    @classmethod
    def _name_is_one_folder(cls, name: str) -> str:
        # The name becomes a folder under results/ and an MLflow experiment: it must not escape.
        if not _CONFIG_NAME.match(name):
            raise ValueError(
                f"name {name!r} must be a plain folder name (letters, digits, '.', '_', '-'; "
                "no '/' and not starting with '.'), as results are written to results/<name>/"
            )
        return name

    @model_validator(mode="after")
    def _references_resolve(self) -> PipelineConfig:
        def need(kind: str, name: str | None, pool: dict[str, Any], where: str) -> None:
            if name is not None and name not in pool:
                raise ValueError(f"unknown {kind} {name!r} in {where}; valid: {', '.join(sorted(pool))}")

        need("model", self.generation.model, self.models, "generation.model")
        need("prompt", self.generation.prompt, self.prompts, "generation.prompt")
        need("model", self.evaluation.judge, self.models, "evaluation.judge")
        for name, ep in self.models.items():
            for fb in ep.fallbacks:
                need("model", fb, self.models, f"models.{name}.fallbacks")
        for name, route in self.routing.routes.items():
            need("model", route.model, self.models, f"routing.routes.{name}.model")
            need("prompt", route.prompt, self.prompts, f"routing.routes.{name}.prompt")
            for model in route.selection.models if route.selection else ():
                need("model", model, self.models, f"routing.routes.{name}.selection.models")
        return self

    @model_validator(mode="after")
    def _graph_is_extracted(self) -> PipelineConfig:
        if self.retrieval.graph is not None and self.ingestion.graph is None:
            raise ValueError(
                "retrieval.graph needs ingestion.graph (e.g. 'heuristic'): entities are extracted at ingest"
            )
        for name in self.routing.routes:
            where = f"routing.routes.{name}.retrieval"
            try:
                effective = self.route_retrieval(name)
            except ValidationError as exc:
                raise ValueError(f"{where}: {exc.errors()[0]['msg']}") from exc
            if effective.graph is not None and self.ingestion.graph is None:
                raise ValueError(f"{where}.graph needs ingestion.graph (e.g. 'heuristic')")
        return self

    def route_model(self, route: str) -> str:
        return self.routing.routes[route].model or self.generation.model

    def route_prompt(self, route: str) -> str:
        return self.routing.routes[route].prompt or self.generation.prompt

    def route_retrieval(self, route: str) -> RetrievalConfig:
        """The retrieval settings of `route`: the global ones with the route's overrides,
        validated as a whole (a route cannot, say, fuse the graph with bm25 alone)."""
        override = self.routing.routes[route].retrieval.model_dump(exclude_none=True)
        if not override:
            return self.retrieval
        return RetrievalConfig.model_validate(self.retrieval.model_dump() | override)
