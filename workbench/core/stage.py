"""The one contract every pipeline stage implements.

A stage has a typed config, reads some fields of the request state and writes others. Because
it declares both, its output can be cached by a content key: a hash of the stage type, its
code version, the packages it relies on, its config and the fields it reads. A sweep that
changes one stage's config therefore recomputes that stage and those after it, and reuses the
rest.

A cache hit must equal a fresh run, so three rules hold:
- a stage stores only what it produced itself: for the fields that accumulate across stages
  (verdicts, model calls, timings) that is the part it appended, never the whole tuple;
- a degraded outcome (an answer from a fallback model, after a failed primary) is not stored;
- the key covers the implementation (`core/implementation.py`), so a bug fix or a new model
  package never serves old outputs.

`astream(state, sink, review)` is the streaming twin of `arun`: the same stages, cache and final
state, but a generator sends its text to `sink` as it is made. `review` is how the stages after
it (those that write `answer` or `blocked`: output guards) judge a draft of the answer, so only
text they pass is released.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError

from workbench.core.implementation import code_version, package_versions
from workbench.core.protocols import AnswerSink
from workbench.core.state import ACCUMULATING, RequestState, StageTiming

log = logging.getLogger(__name__)

# How the stages after a streaming one judge a draft state (see the module docstring).
Review = Callable[[RequestState], Awaitable[RequestState]]

# Bump when the layout of a cached entry changes; old entries then simply stop matching.
CACHE_FORMAT = 2


class StageCache(Protocol):
    """Where stage outputs are kept by content key.

    `blocking` says whether `get`/`put` do I/O; the async pipeline then calls them in a worker
    thread so the event loop never waits on a disk.
    """

    blocking: bool

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any], stage: str = "") -> None: ...


class MemoryStageCache:
    """A dict-backed cache, for one process."""

    blocking = False

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any], stage: str = "") -> None:
        self._data[key] = value

    def __len__(self) -> int:
        return len(self._data)


def content_key(kind: str, config: Any, inputs: dict[str, Any]) -> str:
    """A stable hash of (stage kind, config, inputs)."""
    cfg = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    payload = json.dumps({"kind": kind, "config": cfg, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    return value


class Stage(ABC):
    """A pipeline step: `run(state) -> state`, plus an async variant.

    Subclasses set `kind`, `reads` and `writes`, take only their config in the constructor and
    load anything heavy lazily. `packages` names the distributions whose versions can change
    the stage's output (a tokenizer, an analyzer); they are part of the cache key.
    """

    kind: ClassVar[str] = "stage"
    reads: ClassVar[tuple[str, ...]] = ("query",)
    writes: ClassVar[tuple[str, ...]] = ()
    packages: ClassVar[tuple[str, ...]] = ()
    cacheable: ClassVar[bool] = True
    records_timing: ClassVar[bool] = True

    def __init__(self, config: BaseModel | None = None, name: str | None = None) -> None:
        self.config = config
        self.name = name or self.kind

    @abstractmethod
    def run(self, state: RequestState) -> RequestState:
        """Return a new state; never mutate the one passed in."""

    async def arun(self, state: RequestState) -> RequestState:
        # Default: run the sync body in a worker thread so the event loop stays free.
        return await asyncio.to_thread(self.run, state)

    async def astream(self, state: RequestState, sink: AnswerSink, review: Review | None = None) -> RequestState:
        """`arun`, sending any answer text to `sink` as it is generated; `review` judges a draft
        of it (see the module docstring). Most stages generate no text: they just run."""
        return await self.arun(state)

    def warm_up(self) -> None:  # noqa: B027 - optional hook, most stages have nothing to load
        """Load models or clients ahead of the first request."""

    def config_fingerprint(self) -> Any:
        return self.config.model_dump(mode="json") if self.config is not None else None

    def implementation(self) -> dict[str, Any]:
        """The code and package versions behind this stage's output."""
        cls = type(self)
        return {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "code": code_version(cls.__module__),
            "packages": package_versions(self.packages),
            "format": CACHE_FORMAT,
        }

    def cache_key(self, state: RequestState) -> str:
        inputs = {f: _dump(getattr(state, f)) for f in self.reads}
        config = {"implementation": self.implementation(), "config": self.config_fingerprint()}
        return content_key(self.kind, config, inputs)

    def outputs(self, before: RequestState, after: RequestState) -> dict[str, Any] | None:
        """What this stage produced, to store under its key; None when it must not be stored.

        Accumulating fields keep only what the stage appended, so a hit adds exactly that to
        whatever earlier stages produced this time.
        """
        out: dict[str, Any] = {}
        for field in self.writes:
            value = getattr(after, field)
            if field in ACCUMULATING:
                prior = getattr(before, field)
                if value[: len(prior)] != prior:
                    return None  # the stage rewrote earlier entries: not a pure addition
                value = value[len(prior) :]
            out[field] = _dump(value)
        return out

    def degraded(self, before: RequestState, after: RequestState) -> bool:
        """Whether the outcome is a stand-in for the real one (a fallback model answered)."""
        return any(call.fallback_from for call in after.calls[len(before.calls) :])


def _apply(state: RequestState, outputs: dict[str, Any]) -> RequestState:
    # Validate through the model so cached JSON becomes typed chunks/verdicts again.
    data = state.model_dump()
    for field, value in outputs.items():
        data[field] = [*data[field], *value] if field in ACCUMULATING else value
    return RequestState.model_validate(data)


class Pipeline(Stage):
    """A list of stages, itself a stage. Records per-stage timings and uses an optional cache."""

    kind = "pipeline"
    cacheable = False
    records_timing = False  # its stages record their own

    def __init__(self, stages: Sequence[Stage], name: str = "pipeline", cache: StageCache | None = None) -> None:
        super().__init__(None, name)
        self.stages = list(stages)
        self.cache = cache

    def warm_up(self) -> None:
        for stage in self.stages:
            stage.warm_up()

    def _key(self, stage: Stage, state: RequestState) -> str | None:
        return stage.cache_key(state) if self.cache is not None and stage.cacheable else None

    def _hit(self, key: str, state: RequestState) -> RequestState | None:
        assert self.cache is not None
        value = self.cache.get(key)
        if value is None:
            return None
        try:
            return _apply(state, value)
        except (ValidationError, KeyError, TypeError) as exc:
            # An entry this code cannot read is a miss, never a wrong answer.
            log.warning("ignoring unreadable stage cache entry %s: %s", key[:12], exc)
            return None

    def _store(self, stage: Stage, key: str, before: RequestState, after: RequestState) -> None:
        assert self.cache is not None
        if stage.degraded(before, after):
            return
        outputs = stage.outputs(before, after)
        if outputs is not None:
            self.cache.put(key, outputs, stage.kind)

    @staticmethod
    def _timed(stage: Stage, state: RequestState, started: float, cached: bool) -> RequestState:
        if not stage.records_timing:
            return state
        seconds = time.perf_counter() - started
        timing = StageTiming(stage=stage.name, seconds=seconds, cached=cached, started_at=time.time() - seconds)
        return state.model_copy(update={"timings": state.timings + (timing,)})

    def run(self, state: RequestState) -> RequestState:
        for stage in self.stages:
            if state.blocked:
                break
            started = time.perf_counter()
            key = self._key(stage, state)
            hit = self._hit(key, state) if key is not None else None
            after = hit if hit is not None else stage.run(state)
            if hit is None and key is not None:
                self._store(stage, key, state, after)
            state = self._timed(stage, after, started, hit is not None)
        return state

    async def _io(self, func: Any, *args: Any) -> Any:
        if getattr(self.cache, "blocking", True):
            return await asyncio.to_thread(func, *args)
        return func(*args)

    async def _walk(
        self, state: RequestState, call: Callable[[int, Stage, RequestState], Awaitable[RequestState]]
    ) -> RequestState:
        # One loop for `arun` and `astream`, so a streamed request reads and stores the cache
        # exactly as a plain one does.
        for i, stage in enumerate(self.stages):
            if state.blocked:
                break
            started = time.perf_counter()
            key = self._key(stage, state)
            hit = await self._io(self._hit, key, state) if key is not None else None
            after = hit if hit is not None else await call(i, stage, state)
            if hit is None and key is not None:
                await self._io(self._store, stage, key, state, after)
            state = self._timed(stage, after, started, hit is not None)
        return state

    async def arun(self, state: RequestState) -> RequestState:
        return await self._walk(state, lambda _, stage, current: stage.arun(current))

    async def astream(self, state: RequestState, sink: AnswerSink, review: Review | None = None) -> RequestState:
        """`arun`, with the generator streaming to `sink`; the final state is the one `arun`
        returns. A blocked state (an input guard) ends the walk before any text is made."""
        return await self._walk(state, lambda i, stage, current: stage.astream(current, sink, self._review(i, review)))

    def _review(self, index: int, outer: Review | None) -> Review | None:
        """How the stages after `index` (then those after this pipeline) judge a draft answer."""
        judges = [s for s in self.stages[index + 1 :] if {"answer", "blocked"} & set(s.writes)]
        if not judges:
            return outer

        async def review(draft: RequestState) -> RequestState:
            for stage in judges:
                if draft.blocked:
                    return draft
                draft = await stage.arun(draft)
            return draft if outer is None or draft.blocked else await outer(draft)

        return review


class RouteSwitch(Stage):
    """Dispatches to the sub-pipeline of the route the router chose."""

    kind = "route_switch"
    reads = ("route",)
    cacheable = False
    records_timing = False

    def __init__(self, routes: dict[str, Pipeline], default: str) -> None:
        super().__init__(None, "route_switch")
        self.routes = routes
        self.default = default

    def _pick(self, state: RequestState) -> Pipeline:
        return self.routes.get(state.route or self.default) or self.routes[self.default]

    def warm_up(self) -> None:
        for pipeline in self.routes.values():
            pipeline.warm_up()

    def run(self, state: RequestState) -> RequestState:
        return self._pick(state).run(state)

    async def arun(self, state: RequestState) -> RequestState:
        return await self._pick(state).arun(state)

    async def astream(self, state: RequestState, sink: AnswerSink, review: Review | None = None) -> RequestState:
        return await self._pick(state).astream(state, sink, review)
