"""The Ray executor against a real Ray head on loopback (`ray start --head --block`): the same
rows and winner as the local executor, the budget, resume, and a worker failure as one line."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import write_config
from workbench.core.errors import WorkbenchError
from workbench.sweeps import plan, run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = ["variant", "question_id", "repeat"]
RAY = Path(sys.executable).with_name("ray")
# The cheap checks only: every actor would load presidio and spaCy for `pii`.
GUARDRAILS = {
    "input": [{"check": "max_size", "max_chars": 2000}, {"check": "injection"}],
    "output": [{"check": "groundedness", "threshold": 0.5}],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head on 127.0.0.1 for this module; stopping the `--block` process stops it (and
    only it: `ray stop` would stop every Ray on the machine)."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's unix socket paths must stay short
    env = os.environ | {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep 127.0.0.1 instead of the machine's address
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    command = [str(RAY), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}"]
    command += ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    log = temp / "head.log"
    with log.open("w") as out:
        head = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def on_head(ray_head: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    # The sweep id covers the workbench's source; other edits to the tree while a test runs
    # must not turn its resume into a new sweep.
    frozen = plan.workbench_code_version()
    monkeypatch.setattr(plan, "workbench_code_version", lambda: frozen)
    return ray_head


def _spec(folder: Path, corpus: Path, config: dict[str, Any] | None = None, **spec: Any) -> Path:
    """A sweep over the extractive config with its real embedder (a package, loaded offline)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = write_config(folder, corpus, guardrails=GUARDRAILS)
    if config:
        base.write_text(yaml.safe_dump(yaml.safe_load(base.read_text()) | config))
    body: dict[str, Any] = {
        "name": "ray-sweep",
        "base": base.name,
        "axes": {"retrieval.top_k": [1, 3], "retrieval.mode": ["bm25", "hybrid"]},
        "objective": {"metric": "token_f1"},
        "metrics": ["hit_at_k", "mrr", "exact_match", "token_f1", "abstention"],
        "concurrency": 2,
    } | spec
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _sweep(spec: Path, dataset: Path, executor: str, limit: int) -> Any:
    return run_sweep(spec, dataset, root=spec.parent, limit=limit, executor=executor, tracker=None)


def _comparable(rows: pd.DataFrame) -> pd.DataFrame:
    timing = [c for c in rows.columns if c in {"latency_s", "cached_stages"} or c.startswith("t_")]
    return rows.drop(columns=timing).sort_values(KEY).reset_index(drop=True)


def test_ray_rows_and_winner_match_the_local_executor(on_head: str, tmp_path: Path, small_dataset: Path) -> None:
    corpus = small_dataset / "corpus.jsonl"
    local = _sweep(_spec(tmp_path / "local", corpus), small_dataset, "local", limit=6)
    remote = _sweep(_spec(tmp_path / "ray", corpus), small_dataset, "ray", limit=6)
    assert remote.status == local.status == "finished"
    assert len(remote.rows) == 4 * 6 and not remote.rows.duplicated(KEY).any()
    assert remote.rows["error"].isna().all()
    expected, got = _comparable(local.rows), _comparable(remote.rows)
    assert sorted(got.columns) == sorted(expected.columns)
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    board = ["variant", "token_f1", "hit_at_k", "mrr", "exact_match", "abstention"]
    pd.testing.assert_frame_equal(
        remote.leaderboard[board].sort_values("variant").reset_index(drop=True),
        local.leaderboard[board].sort_values("variant").reset_index(drop=True),
    )
    # The same winner: variants with exactly the best score are told apart by cost, then by
    # latency, which no two runs share; so the winner is one of the variants at the best score.
    scores = local.leaderboard.set_index("variant")["token_f1"]
    assert remote.winner in set(scores[scores == scores.max()].index)
    assert local.winner in set(scores[scores == scores.max()].index)
    # The journal, not just the returned frame, holds the same rows.
    saved = pd.read_parquet(remote.rows_path)
    assert set(map(tuple, saved[KEY].to_numpy())) == set(map(tuple, local.rows[KEY].to_numpy()))


def test_ray_budget_stops_cleanly_and_a_larger_budget_resumes(
    on_head: str, tmp_path: Path, small_dataset: Path
) -> None:
    corpus = small_dataset / "corpus.jsonl"
    axes = {"retrieval.top_k": [1, 3]}
    spec = _spec(tmp_path, corpus, axes=axes, budget={"questions": 5})
    stopped = _sweep(spec, small_dataset, "ray", limit=3)
    assert stopped.status.startswith("budget questions reached")
    # Nothing starts past the budget; the items in flight when it was reached are still recorded.
    assert len(stopped.rows) == stopped.spent.questions == 5
    _spec(tmp_path, corpus, axes=axes, budget={"questions": 100})
    finished = _sweep(spec, small_dataset, "ray", limit=3)
    assert finished.sweep_id == stopped.sweep_id
    assert finished.status == "finished"
    assert len(finished.rows) == 2 * 3 and not finished.rows.duplicated(KEY).any()
    kept = stopped.rows.set_index(KEY)["answer"]
    assert finished.rows.set_index(KEY)["answer"].loc[kept.index].equals(kept)


def test_a_worker_failure_is_one_line_in_the_driver(on_head: str, tmp_path: Path, small_dataset: Path) -> None:
    # The index cannot be built (no such embedder package): a worker error, not a row error.
    broken = {"embedder": {"source": {"package": "no_such_embedder_package", "pattern": "model"}}}
    spec = _spec(tmp_path, small_dataset / "corpus.jsonl", config=broken, axes={"retrieval.top_k": [1, 3]})
    with pytest.raises(WorkbenchError) as raised:
        _sweep(spec, small_dataset, "ray", limit=2)
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    assert "no_such_embedder_package" in message
