"""`Workbench`: the session object a notebook or the CLI holds.

It owns the config, the embedder, the model endpoints, the retrieval index, the stage cache
and the tracker, and passes them where needed: there is no global settings object.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.core.aio import LoopThread
from workbench.core.cache import SqliteStageCache
from workbench.core.config import dump_yaml, load_yaml
from workbench.core.protocols import ChatModel, Embedder
from workbench.core.schema import PipelineConfig
from workbench.core.stage import Pipeline, StageCache
from workbench.core.state import RequestState

if TYPE_CHECKING:
    from workbench.evaluate import EvalResult
    from workbench.retrieval import IngestReport, RetrievalIndex
    from workbench.runner import RunResult
    from workbench.tracking import Tracker


class Workbench:
    """Run, ask and evaluate one pipeline config.

    >>> wb = Workbench.from_yaml("experiments/quickstart.yaml")
    >>> wb.ingest(); state = wb.ask("Who bought the packages?")
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        config_path: str | Path | None = None,
        embedder: Embedder | None = None,
        models: dict[str, ChatModel] | None = None,
        tracker: Tracker | None = None,
        cache: StageCache | Literal["auto"] | None = "auto",
        root: str | Path = ".",
    ) -> None:
        self.config = config
        self.config_path = Path(config_path) if config_path else None
        self.root = Path(root)
        self._embedder = embedder
        self._model_overrides = models or {}
        self._tracker = tracker
        # "auto": a persistent cache beside the store, so unchanged stages are reused across
        # runs and processes; None: no caching (every stage runs, e.g. for benchmarks).
        self.cache = SqliteStageCache(self.store_path.parent / "stage_cache.sqlite") if cache == "auto" else cache
        self._pool: Any = None
        self._index: RetrievalIndex | None = None
        self._pipeline: Pipeline | None = None
        self.loop = LoopThread()

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> Workbench:
        return cls(load_yaml(PipelineConfig, path), config_path=path, **kwargs)

    def close(self) -> None:
        """Stop the session's event loop and close its cache file."""
        self.loop.close()
        close_cache = getattr(self.cache, "close", None)
        if close_cache is not None:
            close_cache()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- lazily built parts -------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from workbench.models.embedder import SentenceTransformerEmbedder

            self._embedder = SentenceTransformerEmbedder(self.config.embedder)
        return self._embedder

    @property
    def pool(self) -> Any:
        if self._pool is None:
            from workbench.models.endpoints import EndpointPool

            self._pool = EndpointPool(self.config.models, overrides=self._model_overrides)
        return self._pool

    @property
    def store_path(self) -> Path:
        return self.root / self.config.store.path

    @property
    def index(self) -> RetrievalIndex:
        if self._index is None:
            from workbench.retrieval import RetrievalIndex

            self._index = RetrievalIndex.open(self.store_path, self.embedder)
        return self._index

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            from workbench.pipeline import build_pipeline

            self._pipeline = build_pipeline(self.config, self.embedder, self.index, self.pool, self.cache)
        return self._pipeline

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            from workbench.tracking import MlflowTracker

            self._tracker = MlflowTracker()
        return self._tracker

    @property
    def config_yaml(self) -> str:
        return dump_yaml(self.config)

    # --- actions ------------------------------------------------------------------------
    def ingest(self, source: str | Path | None = None) -> IngestReport:
        """Chunk, embed and store the corpus; unchanged documents cost nothing."""
        from workbench.core.errors import ConfigError
        from workbench.retrieval import ingest

        source = source if source is not None else self.config.ingestion.source
        if source is None:
            raise ConfigError("no corpus to ingest: set ingestion.source in the config or pass a source")
        report = ingest(
            self.root / source, store=self.store_path, ingestion=self.config.ingestion, embedder=self.embedder
        )
        if report.changed:
            # Only a changed store needs the index (and the stages holding it) opened again;
            # `run` and `eval` ingest on every call, and most calls change nothing.
            self._index = None
            self._pipeline = None
        return report

    def warm_up(self) -> None:
        self.pipeline.warm_up()

    def ask(self, question: str, *, raise_on_block: bool = True) -> RequestState:
        """Answer one question. Raises `GuardrailBlocked`/`InputTooLarge` when a guard blocks."""
        return self.loop.run(self.aask(question, raise_on_block=raise_on_block))

    async def aask(self, question: str, *, raise_on_block: bool = True) -> RequestState:
        from workbench.guardrails import raise_if_blocked

        state = await self.pipeline.arun(RequestState(query=question))
        if raise_on_block:
            raise_if_blocked(state)
        return state

    def run(
        self, dataset: str | Path, *, limit: int | None = None, log: bool = True, progress: bool = False
    ) -> RunResult:
        """Run every question of a dataset; write results and log one MLflow run."""
        from workbench.runner import run_dataset

        return run_dataset(self, dataset, limit=limit, log=log, progress=progress)

    def feedback(self, run_id: str, question_id: str, thumbs: str, comment: str = "", user: str = "user") -> Any:
        """Record thumbs up/down (+ comment) for a question of a run: stored in DuckDB and, when
        the run has traces, logged to MLflow as feedback on that question's trace."""
        from workbench.tracking.feedback import record_feedback

        find = getattr(self.tracker, "find_trace", None)
        trace_id = find(run_id, question_id) if find is not None else None
        return record_feedback(
            duckdb_path=self.root / "results" / "feedback.duckdb",
            run_id=run_id,
            question_id=question_id,
            thumbs=thumbs,  # type: ignore[arg-type]
            comment=comment,
            trace_id=trace_id,
            tracker=self.tracker,
            user=user,
        )

    def feedback_dataset(self, run_id: str, dataset: str | Path, name: str) -> Path:
        """Turn the labelled feedback of a run into a new dataset version under datasets/."""
        from workbench.core.dataset import resolve_dataset_path
        from workbench.tracking.feedback import feedback_to_dataset

        source = resolve_dataset_path(dataset, self.root / "datasets")
        return feedback_to_dataset(
            self.root / "results" / "feedback.duckdb",
            self.tracker.load_table(run_id),
            source,
            self.root / "datasets" / name,
            name=name,
            run_id=run_id,
        )

    def evaluate(
        self,
        dataset: str | Path,
        *,
        limit: int | None = None,
        metrics: list[str] | None = None,
        judge: str | None = None,
        judge_repeats: int | None = None,
        log: bool = True,
        progress: bool = False,
    ) -> EvalResult:
        """Run (reusing cached stages), score with CIs and judge accounting, log one MLflow run."""
        from workbench.evaluate import evaluate

        return evaluate(
            self,
            dataset,
            limit=limit,
            metrics=metrics,
            judge=judge,
            judge_repeats=judge_repeats,
            log_run=log,
            progress=progress,
        )
