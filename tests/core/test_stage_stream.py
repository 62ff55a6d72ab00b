"""`Pipeline.astream`: the streaming walk runs the stages `arun` runs, with the same cache, and
hands a streaming stage the review of the stages after it (those writing `answer`/`blocked`)."""

from __future__ import annotations

from workbench.core.protocols import DraftCheck
from workbench.core.stage import MemoryStageCache, Pipeline, Review, RouteSwitch, Stage
from workbench.core.state import RequestState


class Sink:
    def __init__(self) -> None:
        self.check: DraftCheck | None = None
        self.pieces: list[str] = []
        self.committed = False

    def begin(self, check: DraftCheck | None) -> None:
        self.check = check

    def restart(self, endpoint: str) -> None:
        self.pieces = []

    async def write(self, piece: str) -> None:
        self.pieces.append(piece)


class Writer(Stage):
    """Answers with the query's words, streaming them, and records what its review made of the
    first word as a draft."""

    kind = "writer"
    writes = ("answer",)

    def __init__(self) -> None:
        super().__init__(None)
        self.calls = 0
        self.reviewed: list[RequestState] = []

    def run(self, state: RequestState) -> RequestState:
        self.calls += 1
        return state.model_copy(update={"answer": state.query})

    async def astream(self, state: RequestState, sink, review: Review | None = None) -> RequestState:  # type: ignore[no-untyped-def]
        if review is not None:
            self.reviewed.append(await review(state.model_copy(update={"answer": state.query.split()[0]})))
        for word in state.query.split(" "):
            await sink.write(word + " ")
        return self.run(state)


class Shout(Stage):
    """An output check: upper-cases the answer, blocks one that says "bad"."""

    kind = "shout"
    reads = ("answer",)
    writes = ("answer", "blocked")

    def run(self, state: RequestState) -> RequestState:
        if state.answer is None:
            return state
        return state.model_copy(update={"answer": state.answer.upper(), "blocked": "bad" in state.answer})


class Stamp(Stage):
    """Neither writes the answer nor blocks: not part of a review."""

    kind = "stamp"
    cacheable = False
    writes = ("route",)

    def run(self, state: RequestState) -> RequestState:
        return state.model_copy(update={"route": (state.route or "") + "!"})


class Block(Stage):
    kind = "block"
    cacheable = False
    writes = ("blocked",)

    def run(self, state: RequestState) -> RequestState:
        return state.model_copy(update={"blocked": True})


def _same(a: RequestState, b: RequestState) -> bool:
    return a.model_dump(exclude={"timings", "request_id"}) == b.model_dump(exclude={"timings", "request_id"})


async def test_stream_walk_equals_arun_and_reviews_with_the_stages_after() -> None:
    writer = Writer()
    pipeline = Pipeline([writer, Stamp(), Shout()])
    sink = Sink()
    streamed = await pipeline.astream(RequestState(query="rollo led them"), sink)
    assert _same(streamed, await pipeline.arun(RequestState(query="rollo led them")))
    assert streamed.answer == "ROLLO LED THEM" and streamed.route == "!"
    assert "".join(sink.pieces) == "rollo led them "
    [draft] = writer.reviewed
    assert draft.answer == "ROLLO" and draft.route is None  # Shout judged it; Stamp did not run


async def test_a_route_pipeline_gets_the_review_of_the_outer_pipeline() -> None:
    writer = Writer()
    inner = Pipeline([writer, Shout()], name="route:a")
    outer = Pipeline([RouteSwitch({"a": inner}, default="a"), Shout()])
    streamed = await outer.astream(RequestState(query="bad news"), Sink())
    assert streamed.blocked  # the final answer was judged, as in arun
    [draft] = writer.reviewed
    assert draft.blocked and draft.answer == "BAD"  # the inner check ran, the outer one not after a block


async def test_a_blocked_state_streams_nothing() -> None:
    writer, sink = Writer(), Sink()
    out = await Pipeline([Block(), writer]).astream(RequestState(query="hello"), sink)
    assert out.blocked and writer.calls == 0 and sink.pieces == []


async def test_the_stream_walk_stores_and_reads_the_stage_cache() -> None:
    cache = MemoryStageCache()
    writer = Writer()
    pipeline = Pipeline([writer, Shout()], cache=cache)
    first = await pipeline.astream(RequestState(query="rollo led them"), Sink())
    assert writer.calls == 1 and len(cache) == 2
    again_sink = Sink()
    again = await pipeline.astream(RequestState(query="rollo led them"), again_sink)
    plain = await pipeline.arun(RequestState(query="rollo led them"))
    assert writer.calls == 1 and again_sink.pieces == []  # a hit streams nothing
    assert _same(first, again) and _same(first, plain)
    assert [t.cached for t in again.timings] == [True, True]
