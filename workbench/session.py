"""`Workbench`: the session object a notebook or the CLI holds.

It owns the config, the embedder, the model endpoints, the retrieval index, the stage cache
and the tracker, and passes them where needed: there is no global settings object.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.core.aio import LoopThread
from workbench.core.cache import SqliteStageCache
from workbench.core.config import dump_yaml, load_yaml
from workbench.core.dataset import Dataset, Document, load_dataset
from workbench.core.paths import resolve_model_paths
from workbench.core.protocols import ChatModel, Embedder
from workbench.core.schema import PipelineConfig
from workbench.core.stage import Pipeline, StageCache
from workbench.core.state import RequestState

if TYPE_CHECKING:
    from workbench.evaluate import EvalResult
    from workbench.evaluation.judged import Judge
    from workbench.retrieval import IngestReport, RetrievalIndex
    from workbench.retrieval.catalog import IndexCatalog
    from workbench.runner import RunContext, RunResult
    from workbench.tracking import Tracker


class Workbench:
    """Run, ask and evaluate one pipeline config.

    Relative paths (in the config, and datasets named on calls) resolve against `root`, which
    defaults to the current directory: the one base for every path the workbench reads or
    writes. `index` (a loaded `RetrievalIndex` or a DuckDB index file) pins the session to that
    index: `ask` and `pipeline` answer from it, as a bundle's session does; dataset runs still
    answer from the index of each dataset's own corpus.

    >>> wb = Workbench.from_yaml("experiments/quickstart.yaml")
    >>> wb.ingest(); state = wb.ask("Who bought the packages?")
    """

    # Indexes kept loaded at once; a sweep over many corpora reopens the older ones.
    MAX_OPEN_INDEXES = 4

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
        index: RetrievalIndex | str | Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = Path(config_path) if config_path else None
        self.root = Path(root)
        self._embedder = embedder
        self._model_overrides = models or {}
        self._tracker = tracker
        # "auto": the persistent, content-addressed cache, so unchanged stages are reused across
        # runs and processes; None: no caching (every stage runs, e.g. for benchmarks).
        self.cache = SqliteStageCache(self.resolve(config.store.cache)) if cache == "auto" else cache
        self._pool: Any = None
        self._corpus: Path | None = None
        self._indexes: OrderedDict[Path, RetrievalIndex] = OrderedDict()
        self._pipelines: dict[str, Pipeline] = {}
        self._corpus_indexes: dict[tuple[str, int, int], Path] = {}
        self._catalog: IndexCatalog | None = None
        # A pinned index (a bundle's) is what `index`, `pipeline` and `ask` answer from, instead
        # of the catalog's index of the config's corpus; a path is opened on first use.
        self._pinned: RetrievalIndex | Path | None = self.resolve(index) if isinstance(index, str | Path) else index
        self.loop = LoopThread()

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> Workbench:
        return cls(load_yaml(PipelineConfig, path), config_path=path, **kwargs)

    def resolve(self, path: str | Path) -> Path:
        """`path` against the session's root (absolute paths stay as they are)."""
        return self.root / Path(path).expanduser()

    @property
    def state_dir(self) -> Path:
        """Where the session's derived files live (stage and judge caches)."""
        return self.resolve(self.config.store.cache).parent

    def close(self) -> None:
        """Stop the session's event loop; close its models, HTTP clients and cache file."""
        if self._pool is not None:
            # Async HTTP clients belong to the session's loop: close them there, then the rest.
            self.loop.run(self._pool.aclose())
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

            self._embedder = SentenceTransformerEmbedder(resolve_model_paths(self.config, self.root).embedder)
        return self._embedder

    @property
    def pool(self) -> Any:
        if self._pool is None:
            from workbench.models.endpoints import EndpointPool

            models = resolve_model_paths(self.config, self.root).models
            self._pool = EndpointPool(models, overrides=self._model_overrides)
        return self._pool

    @property
    def catalog(self) -> IndexCatalog:
        if self._catalog is None:
            from workbench.retrieval.catalog import IndexCatalog

            self._catalog = IndexCatalog(self.resolve(self.config.store.indexes), self.config.ingestion, self.embedder)
        return self._catalog

    def _corpus_path(self, source: str | Path | None = None) -> Path:
        from workbench.core.errors import ConfigError

        source = source if source is not None else self.config.ingestion.source
        if source is None:
            raise ConfigError("no corpus: set ingestion.source in the config or pass a source")
        return self.resolve(source)

    def index_for(self, documents: Sequence[Document] | str | Path) -> RetrievalIndex:
        """The index of exactly `documents` (a list, or a corpus file/folder), built if needed."""
        key = self._index_path(documents)
        if key not in self._indexes:
            from workbench.retrieval import RetrievalIndex

            self._indexes[key] = RetrievalIndex.open(key, self.embedder)
            while len(self._indexes) > self.MAX_OPEN_INDEXES:
                _, evicted = self._indexes.popitem(last=False)
                self._pipelines.pop(evicted.fingerprint, None)
        self._indexes.move_to_end(key)
        return self._indexes[key]

    def _index_path(self, documents: Sequence[Document] | str | Path, *, recheck: bool = False) -> Path:
        if isinstance(documents, str | Path):
            # A corpus file is read and hashed once per version of the file, not on every ask.
            path = Path(documents)
            stat = path.stat() if path.is_file() else None
            version = (str(path.resolve()), stat.st_mtime_ns, stat.st_size) if stat else None
            if not recheck and version is not None and version in self._corpus_indexes:
                return self._corpus_indexes[version]
            built = self.catalog.ensure(path)
            if version is not None:
                self._corpus_indexes[version] = built
            return built
        return self.catalog.ensure(documents)

    @property
    def index(self) -> RetrievalIndex:
        """The pinned index if the session was given one, else the index of the config's corpus
        (or of the source last passed to `ingest`)."""
        if isinstance(self._pinned, Path):
            from workbench.retrieval import RetrievalIndex

            self._pinned = RetrievalIndex.open(self._pinned, self.embedder)
        if self._pinned is not None:
            return self._pinned
        return self.index_for(self._corpus or self._corpus_path())

    def pipeline_for(self, index: RetrievalIndex) -> Pipeline:
        """The config's pipeline answering from `index`."""
        if index.fingerprint not in self._pipelines:
            from workbench.pipeline import build_pipeline

            pipeline = build_pipeline(self.config, self.embedder, index, self.pool, self.cache, root=self.root)
            self._pipelines[index.fingerprint] = pipeline
        return self._pipelines[index.fingerprint]

    @property
    def pipeline(self) -> Pipeline:
        return self.pipeline_for(self.index)

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            from workbench.tracking import MlflowTracker

            # MLFLOW_TRACKING_URI wins, as for MLflow's own tools; else the store under root.
            self._tracker = MlflowTracker(os.environ.get("MLFLOW_TRACKING_URI") or self.resolve("mlflow.db"))
        return self._tracker

    @property
    def config_yaml(self) -> str:
        return dump_yaml(self.config)

    # --- actions ------------------------------------------------------------------------
    def ingest(self, source: str | Path | None = None) -> IngestReport:
        """Build (or find) the index of the corpus; `ask` then answers from it. A corpus that
        was indexed under these settings before costs nothing; an edited one re-embeds only
        the documents that changed."""
        corpus = self._corpus_path(source)
        self._index_path(corpus, recheck=True)
        self._corpus = corpus
        assert self.catalog.last_report is not None
        return self.catalog.last_report

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

    def load_dataset(self, dataset: str | Path, limit: int | None = None) -> Dataset:
        """A dataset by folder path or by name under `<root>/datasets/`."""
        return load_dataset(dataset, base=self.root).limit(limit)

    def run_context(self, dataset: Dataset, *, log: bool = True) -> RunContext:
        """The parts a run of `dataset` needs: the pipeline over the index of its own corpus."""
        from workbench.runner import RunContext

        index = self.index_for(dataset.documents)
        return RunContext(
            config=self.config,
            config_yaml=self.config_yaml,
            pipeline=self.pipeline_for(index),
            index_fingerprint=index.fingerprint,
            loop=self.loop,
            results_dir=self.resolve("results"),
            tracker=self.tracker if log else None,
        )

    def run(
        self, dataset: str | Path, *, limit: int | None = None, log: bool = True, progress: bool = False
    ) -> RunResult:
        """Run every question of a dataset; write results and log one MLflow run."""
        from workbench.runner import run_dataset

        ds = self.load_dataset(dataset, limit)
        return run_dataset(self.run_context(ds, log=log), ds, progress=progress)

    def judge(self, name: str | None, repeats: int | None = None) -> Judge | None:
        """The config's endpoint `name` as an LLM judge, called through the session's pool."""
        from workbench.evaluate import build_judge

        return build_judge(
            self.config,
            name,
            pool=self.pool,
            embedder=self.embedder,
            cache_path=self.state_dir / "judge_cache.duckdb",
            repeats=repeats,
        )

    def feedback(self, run_id: str, question_id: str, thumbs: str, comment: str = "", user: str = "user") -> Any:
        """Record thumbs up/down (+ comment) for a question of a run: stored in DuckDB and, when
        the run has traces, logged to MLflow as feedback on that question's trace."""
        from workbench.guardrails.pii import pii_masker
        from workbench.tracking.feedback import record_feedback

        find = getattr(self.tracker, "find_trace", None)
        trace_id = find(run_id, question_id) if find is not None else None
        guards = self.config.guardrails
        return record_feedback(
            mask=pii_masker([*guards.input, *guards.output]),
            duckdb_path=self.resolve("results") / "feedback.duckdb",
            run_id=run_id,
            question_id=question_id,
            thumbs=thumbs,  # type: ignore[arg-type]
            comment=comment,
            trace_id=trace_id,
            tracker=self.tracker,
            user=user,
        )

    def feedback_dataset(self, run_id: str, dataset: str | Path, name: str) -> Path:
        """Turn the labelled feedback of a run into a new dataset version, `<root>/datasets/<name>/`."""
        from workbench.tracking.feedback import feedback_to_dataset

        return feedback_to_dataset(
            self.resolve("results") / "feedback.duckdb",
            self.tracker.load_table(run_id),
            self.load_dataset(dataset).path,
            self.resolve("datasets") / name,
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
        """Run (reusing cached stages), score with CIs and judge accounting, log one MLflow run.
        The command line's `judge` wins over the config's `evaluation.judge`."""
        from workbench.evaluate import evaluate

        judge_obj = self.judge(judge or self.config.evaluation.judge, judge_repeats)
        ds = self.load_dataset(dataset, limit)
        try:
            return evaluate(
                self.run_context(ds, log=log),
                ds,
                embedder=self.embedder,
                judge=judge_obj,
                metrics=metrics,
                progress=progress,
            )
        finally:
            if judge_obj is not None:
                judge_obj.close()
