"""The served pipeline is the evaluated pipeline: answers over HTTP equal `Workbench.ask`, and
served requests become MLflow traces when tracing is on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.serve.conftest import serving
from workbench.serve.app import create_app
from workbench.serve.tracing import TraceWriter
from workbench.testing.tracker import InMemoryTracker


def _questions(dataset: Path, n: int = 12) -> list[str]:
    rows = [json.loads(line) for line in (dataset / "questions.jsonl").read_text().splitlines()]
    return [r["question"] for r in rows[:n]]


async def test_served_answers_equal_workbench_ask(make_session, make_served, small_dataset: Path) -> None:
    wb = make_session()
    async with serving(create_app(make_served(wb))) as client:
        for question in _questions(small_dataset):
            expected = await asyncio.to_thread(wb.ask, question)
            asked = (await client.post("/v1/ask", json={"question": question})).json()
            body = {"model": "extractive", "messages": [{"role": "user", "content": question}]}
            chat = (await client.post("/v1/chat/completions", json=body)).json()
            stream = (await client.post("/v1/chat/completions", json=body | {"stream": True})).text
            streamed = "".join(
                (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
                for line in stream.splitlines()
                if line.startswith("data: {")
            )
            assert asked["answer"] == chat["choices"][0]["message"]["content"] == streamed == expected.answer
            assert asked["route"] == expected.route
            assert [s["chunk_id"] for s in asked["sources"]] == [c.chunk_id for c in expected.chunks]
            assert [s["chunk_id"] for s in chat["workbench"]["sources"]] == [c.chunk_id for c in expected.chunks]
            assert [(v["check"], v["triggered"]) for v in asked["verdicts"]] == [
                (v.check, v.triggered) for v in expected.verdicts
            ]


async def test_requests_become_traces_and_feedback_lands_on_them(make_session, make_served) -> None:
    tracker = InMemoryTracker()
    wb = make_session()
    served = make_served(wb, tracer=TraceWriter(tracker, experiment="extractive-served"))
    async with serving(create_app(served)) as client:
        answer = (await client.post("/v1/ask", json={"question": "Who picked up the remaining four packages?"})).json()
        served.tracer.flush()
        fb = await client.post("/v1/feedback", json={"response_id": answer["id"], "thumbs": "up", "comment": "ok"})
        assert fb.status_code == 200
    (trace,) = tracker.traces
    assert trace.experiment == "extractive-served" and trace.question_id == answer["id"]
    assert {s.name for s in trace.spans} >= {"retriever", "generator"}
    assert [f.trace_id for f in tracker.feedback] == [trace.trace_id]


@pytest.mark.integration
async def test_traces_reach_a_real_mlflow_store(make_session, make_served, tmp_path: Path) -> None:
    from workbench.tracking import MlflowTracker

    tracker = MlflowTracker(tmp_path / "mlflow.db")
    served = make_served(make_session(), tracer=TraceWriter(tracker, experiment="extractive-served"))
    async with serving(create_app(served)) as client:
        answer = (await client.post("/v1/ask", json={"question": "When did the monopoly end?"})).json()
        await asyncio.to_thread(served.tracer.flush)
        fb = await client.post("/v1/feedback", json={"response_id": answer["id"], "thumbs": "down"})
        assert fb.status_code == 200, fb.text
    experiment = tracker.client.get_experiment_by_name("extractive-served")
    (trace,) = tracker.client.search_traces(locations=[experiment.experiment_id])
    assert trace.info.tags.get("question_id") == answer["id"]
    assert any(a.name == "user_feedback" for a in trace.info.assessments)
