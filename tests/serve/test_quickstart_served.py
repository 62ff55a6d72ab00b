"""The newcomer's loop end to end, with the real local models: run the shipped sweep, export its
winner, serve the bundle with `python -m workbench serve` (real uvicorn), and talk to it with the
official `openai` client. (A tampered bundle's refusal: tests/serve/test_serve_integration.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from workbench.testing.workbench_server import WorkbenchServer

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _workbench(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], cwd=root, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A project root with the shipped experiments, the sweep run on 6 questions, its winner exported."""
    root = tmp_path_factory.mktemp("quickstart")
    shutil.copytree(REPO / "experiments", root / "experiments")
    (root / "datasets").symlink_to(REPO / "datasets")
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    swept = _workbench(
        root,
        "sweep",
        "experiments/sweeps/quickstart.yaml",
        "--dataset",
        "squad_disfl",
        "--limit",
        "6",
        "--json",
        "--tracking-uri",
        tracking,
    )
    assert swept.returncode == 0, swept.stderr[-2000:]
    sweep = json.loads(swept.stdout.strip().splitlines()[-1])
    out = _workbench(root, "export", sweep["sweep_id"], "--out", "bundle", "--tracking-uri", tracking)
    assert out.returncode == 0, out.stderr[-2000:]
    return {"root": root, "sweep": sweep, "bundle": root / "bundle", "export_stdout": out.stdout}


@pytest.fixture(scope="module")
def server(exported: dict[str, object]) -> Iterator[str]:
    running = WorkbenchServer("bundle", cwd=exported["root"])  # type: ignore[arg-type]
    try:
        running.wait_ready()
        yield running.url
    finally:
        running.stop()


def test_the_sweep_winner_is_exported_with_its_evidence(exported: dict[str, object]) -> None:
    bundle = exported["bundle"]
    sweep = exported["sweep"]
    assert isinstance(bundle, Path) and isinstance(sweep, dict)
    verified = _workbench(bundle.parent, "verify", "bundle")
    assert verified.returncode == 0, verified.stderr
    scorecard = json.loads((bundle / "scorecard.json").read_text())
    assert scorecard["sweep"]["sweep_id"] == sweep["sweep_id"]
    assert scorecard["mlflow"]["run_id"] and scorecard["dataset"]["fingerprint"]
    golden = [json.loads(line) for line in (bundle / "golden.jsonl").read_text().splitlines() if line.strip()]
    assert golden and all(g["expected_retrieved"] for g in golden)


def test_the_openai_client_gets_the_evaluated_answers_streamed_and_not(
    exported: dict[str, object], server: str
) -> None:
    from openai import OpenAI

    bundle = exported["bundle"]
    assert isinstance(bundle, Path)
    golden = [json.loads(line) for line in (bundle / "golden.jsonl").read_text().splitlines() if line.strip()]
    client = OpenAI(base_url=f"{server}/v1", api_key="unused")
    model = client.models.list().data[0].id
    question = golden[0]
    messages = [{"role": "user", "content": question["question"]}]

    plain = client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    assert plain.choices[0].message.content == question["expected_answer"]
    assert plain.choices[0].finish_reason == "stop"

    pieces, finish = [], None
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True):  # type: ignore[arg-type]
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == question["expected_answer"]
    assert finish == "stop"

    feedback = httpx.post(
        f"{server}/v1/feedback",
        json={"response_id": plain.id, "thumbs": "up", "comment": "mail me at jane.doe@example.com"},
        timeout=30,
    )
    assert feedback.status_code == 200, feedback.text
    assert "jane.doe@example.com" not in feedback.json()["comment"]

    metrics = httpx.get(f"{server}/metrics", timeout=30).text
    served = [
        line
        for line in metrics.splitlines()
        if line.startswith("workbench_requests_total") and "chat" in line and not line.endswith(" 0.0")
    ]
    assert served, metrics[:2000]
    assert "workbench_time_to_first_token_seconds_count" in metrics
