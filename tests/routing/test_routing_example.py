"""The shipped experiments/routing.yaml end to end with the real embedder, on a small corpus:
an out-of-scope request is refused without a model call, arithmetic goes to the calculator
route, and a factual question carries the complexity policy's choice and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workbench.session import Workbench

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Workbench:
    pytest.importorskip("sentence_transformers")
    tmp = tmp_path_factory.mktemp("routing")
    data = yaml.safe_load((REPO / "experiments" / "routing.yaml").read_text())
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join((REPO / "datasets" / "squad_disfl" / "corpus.jsonl").read_text().splitlines(True)[:6]))
    data["store"] = {"indexes": str(tmp / "indexes"), "cache": str(tmp / "stage_cache.sqlite")}
    data["ingestion"]["source"] = str(corpus)
    path = tmp / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    wb = Workbench.from_yaml(path, cache=None, root=REPO)
    wb.ingest()
    yield wb
    wb.close()


def test_out_of_scope_is_refused_without_a_model(workbench: Workbench) -> None:
    state = workbench.ask("Book me a hotel room in Lisbon for next weekend.")
    assert state.route == "out_of_scope" and state.calls == ()
    assert state.answer is not None and state.answer.startswith("Sorry")


def test_arithmetic_goes_to_the_calculator(workbench: Workbench) -> None:
    state = workbench.ask("What is 45 times 12?")
    assert state.route == "arithmetic" and [c.endpoint for c in state.calls] == ["smollm2_json"]
    assert [t.tool for t in state.tool_calls] == ["calculator"]


def test_a_factual_question_records_the_models_choice(workbench: Workbench) -> None:
    state = workbench.ask("Which broadcaster picked up the remaining Premier League packages?")
    assert state.route == "factual" and state.model_choice is not None
    assert state.model_choice.policy == "complexity" and state.model_choice.complexity is not None
    assert [c.endpoint for c in state.calls] == [state.model_choice.model]
