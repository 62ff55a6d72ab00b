from pydantic import BaseModel

from workbench.core.stage import MemoryStageCache, Pipeline, RouteSwitch, Stage
from workbench.core.state import Chunk, RequestState


class UpperConfig(BaseModel):
    suffix: str = "!"


class Upper(Stage):
    kind = "upper"
    reads = ("query",)
    writes = ("answer",)

    def __init__(self, config: UpperConfig) -> None:
        super().__init__(config)
        self.calls = 0

    def run(self, state: RequestState) -> RequestState:
        self.calls += 1
        return state.model_copy(update={"answer": state.query.upper() + self.config.suffix})


class Retrieve(Stage):
    kind = "retrieve"
    writes = ("chunks",)

    def run(self, state: RequestState) -> RequestState:
        chunk = Chunk(chunk_id="c", doc_id="d", text=state.query, start=0, end=len(state.query), score=1.0)
        return state.model_copy(update={"chunks": (chunk,)})


class Block(Stage):
    kind = "block"
    cacheable = False

    def run(self, state: RequestState) -> RequestState:
        return state.model_copy(update={"blocked": True})


def test_state_is_immutable_and_stage_returns_new_state() -> None:
    state = RequestState(query="hi")
    out = Upper(UpperConfig()).run(state)
    assert state.answer is None and out.answer == "HI!"


def test_cache_reuses_unchanged_stage_and_recomputes_changed_one() -> None:
    cache = MemoryStageCache()
    first = Upper(UpperConfig())
    Pipeline([Retrieve(), first], cache=cache).run(RequestState(query="q"))
    again = Upper(UpperConfig())
    out = Pipeline([Retrieve(), again], cache=cache).run(RequestState(query="q"))
    assert again.calls == 0 and out.answer == "Q!"
    assert [t.cached for t in out.timings] == [True, True]
    assert isinstance(out.chunks[0], Chunk)
    changed = Upper(UpperConfig(suffix="?"))
    out = Pipeline([Retrieve(), changed], cache=cache).run(RequestState(query="q"))
    assert changed.calls == 1 and out.answer == "Q?"
    assert [t.cached for t in out.timings] == [True, False]


def test_cache_key_depends_on_inputs_and_config() -> None:
    stage = Upper(UpperConfig())
    a, b = RequestState(query="a"), RequestState(query="b")
    assert stage.cache_key(a) != stage.cache_key(b)
    assert stage.cache_key(a) == stage.cache_key(RequestState(query="a"))  # request ids don't matter
    assert stage.cache_key(a) != Upper(UpperConfig(suffix="?")).cache_key(a)


def test_blocked_state_stops_pipeline_and_timings_recorded() -> None:
    upper = Upper(UpperConfig())
    out = Pipeline([Block(), upper]).run(RequestState(query="x"))
    assert out.blocked and out.answer is None and upper.calls == 0
    assert [t.stage for t in out.timings] == ["block"]


async def test_async_pipeline_and_route_switch() -> None:
    a, b = Upper(UpperConfig(suffix="A")), Upper(UpperConfig(suffix="B"))
    switch = RouteSwitch({"a": Pipeline([a]), "b": Pipeline([b])}, default="a")
    out = await Pipeline([switch]).arun(RequestState(query="x", route="b"))
    assert out.answer == "XB"
    out = await Pipeline([switch]).arun(RequestState(query="x", route="unknown"))
    assert out.answer == "XA"
    assert [t.stage for t in out.timings] == ["upper"]


def test_sqlite_cache_survives_a_new_process_object(tmp_path) -> None:
    from workbench.core.cache import SqliteStageCache

    first = SqliteStageCache(tmp_path / "cache.sqlite")
    Pipeline([Retrieve(), Upper(UpperConfig())], cache=first).run(RequestState(query="q"))
    first.close()
    second = SqliteStageCache(tmp_path / "cache.sqlite")
    upper = Upper(UpperConfig())
    out = Pipeline([Retrieve(), upper], cache=second).run(RequestState(query="q"))
    assert upper.calls == 0 and out.answer == "Q!" and out.chunks[0].doc_id == "d"
    assert second.hits == 2 and len(second) == 2
