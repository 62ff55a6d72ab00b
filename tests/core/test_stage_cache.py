"""The stage cache returns exactly what a fresh run would (issue 6, section 1)."""

import asyncio
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from workbench.core import implementation
from workbench.core.cache import SqliteStageCache
from workbench.core.schema import InjectionCheck, JsonSchemaCheck, MaxSizeCheck
from workbench.core.stage import MemoryStageCache, Pipeline, Stage
from workbench.core.state import ModelCall, RequestState
from workbench.guardrails import InputGuardStage, OutputGuardStage


class _Answer(Stage):
    kind = "fake_answer"
    writes = ("answer", "calls")

    def __init__(self, fallback_from: str | None = None) -> None:
        super().__init__(None)
        self.fallback_from = fallback_from
        self.calls = 0

    def run(self, state: RequestState) -> RequestState:
        self.calls += 1
        call = ModelCall(
            endpoint="backup" if self.fallback_from else "primary",
            model="m",
            tokens_in=3,
            tokens_out=2,
            cost=0.0,
            latency_s=0.01,
            fallback_from=self.fallback_from,
        )
        return state.model_copy(update={"answer": f"about {state.query}", "calls": state.calls + (call,)})


def _guarded(input_checks: list, cache: MemoryStageCache | SqliteStageCache, answer: _Answer) -> Pipeline:
    return Pipeline(
        [InputGuardStage(input_checks), answer, OutputGuardStage([JsonSchemaCheck(check="json_schema")])],
        cache=cache,
    )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_hit_adds_only_what_the_stage_produced(kind: str, tmp_path: Path) -> None:
    cache = MemoryStageCache() if kind == "memory" else SqliteStageCache(tmp_path / "c.sqlite")
    _guarded([MaxSizeCheck(check="max_size")], cache, _Answer()).run(RequestState(query="q"))

    # Change the input checks, ask again: the answer and the output guard are served from the
    # cache, and must not put back the verdicts of the old input checks.
    answer = _Answer()
    checks = [MaxSizeCheck(check="max_size"), InjectionCheck(check="injection")]
    fresh = _guarded(checks, MemoryStageCache(), _Answer()).run(RequestState(query="q"))
    served = _guarded(checks, cache, answer).run(RequestState(query="q"))

    assert answer.calls == 0
    assert [t.cached for t in served.timings] == [False, True, True]
    assert served.verdicts == fresh.verdicts
    assert [(v.stage, v.check) for v in served.verdicts] == [
        ("input_guard", "max_size"),
        ("input_guard", "injection"),
        ("output_guard", "json_schema"),
    ]
    assert served.calls == fresh.calls and len(served.calls) == 1


def test_cached_stage_keeps_calls_of_earlier_stages() -> None:
    cache = MemoryStageCache()
    Pipeline([_Answer(), _Answer()], cache=cache).run(RequestState(query="q"))
    out = Pipeline([_Answer(), _Answer()], cache=cache).run(RequestState(query="q"))
    # The second stage reads only the query, so both stages hit; each adds its own one call.
    assert len(out.calls) == 2 and out.tokens_in == 6


def test_fallback_answer_is_never_cached_as_the_real_one() -> None:
    cache = MemoryStageCache()
    degraded = Pipeline([_Answer(fallback_from="primary")], cache=cache).run(RequestState(query="q"))
    assert degraded.fallback_used and len(cache) == 0

    primary = _Answer()
    out = Pipeline([primary], cache=cache).run(RequestState(query="q"))
    assert primary.calls == 1 and not out.fallback_used
    assert len(cache) == 1


def test_key_covers_code_and_package_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    state = RequestState(query="q")
    stage = _Answer()
    key = stage.cache_key(state)
    monkeypatch.setattr("workbench.core.stage.code_version", lambda module: "patched")
    assert stage.cache_key(state) != key

    class _Tokenized(_Answer):
        packages = ("pydantic",)

    before = _Tokenized().cache_key(state)
    monkeypatch.setattr("workbench.core.stage.package_versions", lambda names: {n: "999" for n in names})
    assert _Tokenized().cache_key(state) != before


def test_code_version_changes_when_the_source_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    module_file = tmp_path / "user_stage_mod.py"
    module_file.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("user_stage_mod")
    first = implementation.code_version("user_stage_mod")
    module_file.write_text("X = 2  # a bug fix\n")
    implementation.code_version.cache_clear()
    assert implementation.code_version("user_stage_mod") != first
    sys.modules.pop("user_stage_mod")
    # Our own stages hash their whole layer and core: the generator's version covers the pool.
    files = {p.name for p in implementation._source_files("workbench.models.generator")}
    assert {"generator.py", "endpoints.py", "stage.py"} <= files


class _ThreadRecordingCache(MemoryStageCache):
    blocking = True

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def get(self, key: str):  # type: ignore[no-untyped-def]
        self.threads.add(threading.get_ident())
        return super().get(key)

    def put(self, key: str, value: dict, stage: str = "") -> None:  # type: ignore[type-arg]
        self.threads.add(threading.get_ident())
        super().put(key, value, stage)


async def test_async_pipeline_keeps_cache_io_off_the_event_loop() -> None:
    cache = _ThreadRecordingCache()
    await Pipeline([_Answer()], cache=cache).arun(RequestState(query="q"))
    await Pipeline([_Answer()], cache=cache).arun(RequestState(query="q"))
    assert cache.hits == 1 and cache.threads
    assert threading.get_ident() not in cache.threads
    assert asyncio.get_running_loop().is_running()


def test_unreadable_entry_is_a_miss_not_a_wrong_answer() -> None:
    cache = MemoryStageCache()
    stage = _Answer()
    cache.put(stage.cache_key(RequestState(query="q")), {"calls": [{"nonsense": 1}]})
    out = Pipeline([stage], cache=cache).run(RequestState(query="q"))
    assert stage.calls == 1 and out.answer == "about q"


def _hammer(path: str, worker: int, n: int, errors) -> None:  # type: ignore[no-untyped-def]
    cache = SqliteStageCache(path, busy_timeout_s=10)
    try:
        for i in range(n):
            cache.put(f"{worker}-{i}", {"answer": f"w{worker} {i}" * 20}, "generator")
            shared = cache.get(f"{1 - worker}-{i // 2}")
            if shared is not None and shared["answer"] != f"w{1 - worker} {i // 2}" * 20:
                errors.put(f"worker {worker} read a wrong value for {i // 2}")
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(repr(exc))
    finally:
        cache.close()


@pytest.mark.integration
def test_two_processes_share_one_cache_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    SqliteStageCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(path, w, 400, errors)) for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]
    assert errors.empty(), errors.get()

    cache = SqliteStageCache(path)
    assert len(cache) == 800
    assert cache.get("1-399") == {"answer": "w1 399" * 20}
    assert cache.info().stages == {"generator": (800, pytest.approx(cache.info().stages["generator"][1]))}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_info_and_clear_by_stage(tmp_path: Path) -> None:
    cache = SqliteStageCache(tmp_path / "c.sqlite")
    cache.put("a", {"x": 1}, "retriever")
    cache.put("b", {"x": 2}, "generator")
    cache.put("c", {"x": 3}, "generator")
    info = cache.info()
    assert info.entries == 3 and info.stages["generator"][0] == 2 and info.file_bytes > 0
    assert cache.clear("generator") == 2
    assert cache.get("b") is None and cache.get("a") == {"x": 1}
    assert cache.clear() == 1 and len(cache) == 0
