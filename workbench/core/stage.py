"""The one contract every pipeline stage implements.

A stage has a typed config, reads some fields of the request state and writes others. Because
it declares both, its output can be cached by a content key: a hash of the stage type, its
config and the fields it reads. A sweep that changes one stage's config therefore recomputes
that stage and those after it, and reuses the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from workbench.core.state import RequestState, StageTiming


class StageCache(Protocol):
    """Where stage outputs are kept by content key."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryStageCache:
    """A dict-backed cache, for one process."""

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

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = value


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
    load anything heavy lazily.
    """

    kind: ClassVar[str] = "stage"
    reads: ClassVar[tuple[str, ...]] = ("query",)
    writes: ClassVar[tuple[str, ...]] = ()
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

    def warm_up(self) -> None:  # noqa: B027 - optional hook, most stages have nothing to load
        """Load models or clients ahead of the first request."""

    def config_fingerprint(self) -> Any:
        return self.config.model_dump(mode="json") if self.config is not None else None

    def cache_key(self, state: RequestState) -> str:
        inputs = {f: _dump(getattr(state, f)) for f in self.reads}
        return content_key(f"{type(self).__module__}.{type(self).__qualname__}", self.config_fingerprint(), inputs)

    def outputs(self, state: RequestState) -> dict[str, Any]:
        return {f: _dump(getattr(state, f)) for f in self.writes}


def _apply(state: RequestState, outputs: dict[str, Any]) -> RequestState:
    # Validate through the model so cached JSON becomes typed chunks/verdicts again.
    data = state.model_dump()
    data.update(outputs)
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

    def _lookup(self, stage: Stage, state: RequestState) -> tuple[str | None, RequestState | None]:
        if self.cache is None or not stage.cacheable:
            return None, None
        key = stage.cache_key(state)
        hit = self.cache.get(key)
        return key, (_apply(state, hit) if hit is not None else None)

    def _record(self, stage: Stage, key: str | None, before: float, state: RequestState, cached: bool) -> RequestState:
        if key is not None and not cached:
            self.cache.put(key, stage.outputs(state))  # type: ignore[union-attr]
        if not stage.records_timing:
            return state
        seconds = time.perf_counter() - before
        timing = StageTiming(stage=stage.name, seconds=seconds, cached=cached, started_at=time.time() - seconds)
        return state.model_copy(update={"timings": state.timings + (timing,)})

    def run(self, state: RequestState) -> RequestState:
        for stage in self.stages:
            if state.blocked:
                break
            before = time.perf_counter()
            key, hit = self._lookup(stage, state)
            state = self._record(stage, key, before, hit or stage.run(state), hit is not None)
        return state

    async def arun(self, state: RequestState) -> RequestState:
        for stage in self.stages:
            if state.blocked:
                break
            before = time.perf_counter()
            key, hit = self._lookup(stage, state)
            state = self._record(stage, key, before, hit or await stage.arun(state), hit is not None)
        return state


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
