"""Dataset runs lose nothing and answer from their own corpus (issue 6, sections 2 and 6).

Fast: a hashing embedder and scripted models, with real DuckDB indexes and results files.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_config
from workbench.core.errors import DatasetError
from workbench.core.protocols import Completion, GenerationRequest
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder
from workbench.testing.models import FunctionModel, ScriptedModel
from workbench.testing.tracker import InMemoryTracker


def _dataset(folder: Path, docs: list[tuple[str, str]], questions: list[tuple[str, str, str]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    rows = []
    for qid, question, doc in questions:
        text = dict(docs)[doc]
        rows.append(
            {
                "id": qid,
                "question": question,
                "answer": text.split()[1],
                "evidence": [{"doc_id": doc, "start": 0, "end": len(text)}],
            }
        )
    (folder / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def two_datasets(tmp_path: Path) -> tuple[Path, Path]:
    a = _dataset(
        tmp_path / "datasets" / "alpha",
        [("p1", "Falcons nest on the high northern cliffs."), ("p2", "Granite came from the old quarry.")],
        [("a1", "Where do falcons nest?", "p1"), ("a2", "Where did the granite come from?", "p2")],
    )
    # Same document ids, different text: a shared store would overwrite alpha's p1 and p2.
    b = _dataset(
        tmp_path / "datasets" / "beta",
        [("p1", "Copper wires link the relay stations."), ("p2", "Apples grow in the walled orchard.")],
        [("b1", "What links the relay stations?", "p1"), ("b2", "Where do apples grow?", "p2")],
    )
    return a, b


def _wb(tmp_path: Path, corpus: Path, **kwargs) -> Workbench:
    kwargs.setdefault("tracker", InMemoryTracker())
    kwargs.setdefault("embedder", HashingEmbedder(128, min_token_len=3))
    return Workbench.from_yaml(write_config(tmp_path, corpus), root=tmp_path, **kwargs)


def test_a_dataset_answers_only_from_its_own_corpus(tmp_path: Path, two_datasets) -> None:
    a, b = two_datasets
    wb = _wb(tmp_path, a / "corpus.jsonl")
    first = wb.run("alpha", log=False).frame
    wb.run("beta", log=False)
    again = wb.run("alpha", log=False).frame
    assert first["retrieved"].map(list).tolist() == again["retrieved"].map(list).tolist()
    assert all("Falcons" in c[0] or "Granite" in c[0] for c in again["contexts"])
    assert again["hit"].all()
    fingerprints = set(first["index_fingerprint"]) | set(again["index_fingerprint"])
    assert len(fingerprints) == 1


def test_index_fingerprint_is_logged_on_every_run(tmp_path: Path, two_datasets) -> None:
    a, b = two_datasets
    tracker = InMemoryTracker()
    wb = _wb(tmp_path, a / "corpus.jsonl", tracker=tracker)
    wb.run("alpha")
    wb.run("beta")
    prints = [run.tags["index_fingerprint"] for run in tracker.runs]
    assert len(prints) == 2 and prints[0] != prints[1] and all(prints)
    assert all(run.params["index_fingerprint"] == run.tags["index_fingerprint"] for run in tracker.runs)


def test_relative_paths_resolve_against_the_session_root(tmp_path: Path, two_datasets, monkeypatch) -> None:
    a, _ = two_datasets
    monkeypatch.chdir("/")  # not the root: nothing may resolve against the working directory
    wb = _wb(tmp_path, Path("datasets/alpha/corpus.jsonl"))
    assert wb.ingest().added == 2
    result = wb.run("datasets/alpha", log=False)
    assert result.parquet_path is not None and result.parquet_path.is_relative_to(tmp_path / "results")
    assert wb.run("alpha", log=False).frame["hit"].all()
    assert (tmp_path / "indexes").is_dir() and (tmp_path / "stage_cache.sqlite").is_file()


def test_results_files_are_unique_per_run(tmp_path: Path, two_datasets) -> None:
    a, _ = two_datasets
    wb = _wb(tmp_path, a / "corpus.jsonl")
    paths = {wb.run("alpha", log=False).parquet_path for _ in range(3)}
    assert len(paths) == 3 and all(p is not None and p.is_file() for p in paths)


def _explode_on(word: str, exc: BaseException):
    def reply(request: GenerationRequest) -> str | Completion:
        if word in request.question:
            raise exc
        return "an answer"

    return reply


def test_any_exception_in_one_question_becomes_its_error(tmp_path: Path, two_datasets) -> None:
    a, _ = two_datasets
    model = FunctionModel(_explode_on("granite", RuntimeError("a bug in a provider")))
    wb = _wb(tmp_path, a / "corpus.jsonl", models={"extractive": model})
    frame = wb.run("alpha", log=False).frame.set_index("question_id")
    assert frame.loc["a1", "answer"] == "an answer" and pd.isna(frame.loc["a1", "error"])
    assert frame.loc["a2", "error"] == "RuntimeError: a bug in a provider"


def test_an_interrupted_run_keeps_its_finished_rows_as_partial(tmp_path: Path, two_datasets) -> None:
    a, _ = two_datasets
    model = FunctionModel(_explode_on("granite", asyncio.CancelledError()))
    wb = _wb(tmp_path, a / "corpus.jsonl", models={"extractive": model})
    wb.config = wb.config.model_copy(update={"concurrency": 1})
    with pytest.raises(BaseException):  # noqa: B017 - the interruption itself propagates
        wb.run("alpha", log=False)
    files = list((tmp_path / "results").rglob("*.parquet"))
    assert [f.name.endswith(".partial.parquet") for f in files] == [True]
    assert pd.read_parquet(files[0])["question_id"].tolist() == ["a1"]


def test_masked_questions_are_what_results_record(tmp_path: Path, two_datasets) -> None:
    a, _ = two_datasets
    wb = _wb(tmp_path, a / "corpus.jsonl", models={"extractive": ScriptedModel(["x"], repeat_last=True)})
    folder = _dataset(
        tmp_path / "datasets" / "pii",
        [("p1", "Falcons nest on the high northern cliffs.")],
        [("q1", "I am zq7x.unique@example.com: where do falcons nest?", "p1")],
    )
    frame = wb.run(folder, log=False).frame
    assert "zq7x.unique@example.com" not in frame["question"].iloc[0]
    assert "<EMAIL_ADDRESS>" in frame["question"].iloc[0]


def test_duplicate_question_ids_are_an_error_naming_file_and_line(tmp_path: Path, two_datasets) -> None:
    a, _ = two_datasets
    lines = (a / "questions.jsonl").read_text().splitlines()
    (a / "questions.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    wb = _wb(tmp_path, a / "corpus.jsonl")
    with pytest.raises(DatasetError, match=r"questions.jsonl:3: duplicate id 'a1' \(first on line 1\)"):
        wb.run("alpha", log=False)


def test_a_fallback_answer_is_not_served_once_the_primary_is_back(tmp_path: Path, two_datasets) -> None:
    from workbench.core.errors import ProviderUnavailable
    from workbench.testing.models import FailingModel

    a, _ = two_datasets
    models = {
        "primary": {"provider": "extractive", "fallbacks": ["backup"], "retry": {"max_attempts": 1}},
        "backup": {"provider": "extractive"},
    }
    config = write_config(
        tmp_path, a / "corpus.jsonl", models=models, generation={"model": "primary", "prompt": "plain"}
    )
    embedder = HashingEmbedder(128, min_token_len=3)
    down = Workbench.from_yaml(
        config, root=tmp_path, embedder=embedder, models={"primary": FailingModel(ProviderUnavailable)}
    )
    assert down.run("alpha", log=False).frame["fallback_used"].all()
    down.close()
    back = Workbench.from_yaml(
        config,
        root=tmp_path,
        embedder=embedder,
        models={"primary": ScriptedModel(["the real answer"], repeat_last=True)},
    )
    frame = back.run("alpha", log=False).frame
    assert frame["answer"].eq("the real answer").all() and not frame["fallback_used"].any()
    assert (frame["cached_stages"] > 0).all()  # the stages before the generator were still reused


def test_close_closes_models_http_clients_and_the_cache(tmp_path: Path, two_datasets) -> None:
    a, _ = two_datasets
    models = {
        "extractive": {"provider": "extractive"},
        "remote": {"provider": "openai_compat", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
    }
    wb = Workbench.from_yaml(
        write_config(tmp_path, a / "corpus.jsonl", models=models),
        root=tmp_path,
        embedder=HashingEmbedder(128, min_token_len=3),
    )
    wb.run("alpha", log=False)
    remote = wb.pool.model("remote")
    sync_client, async_client = remote._sync_client(), wb.loop.run(_make_async(remote))
    wb.close()
    assert sync_client.is_closed and async_client.is_closed
    assert wb.cache._conn is None  # type: ignore[union-attr]
    wb.close()  # idempotent


async def _make_async(model):  # type: ignore[no-untyped-def]
    return model._aclient()
