"""Start a real `mlflow server` on 127.0.0.1 for tests: SQLite backend and artifacts in a folder.

    with mlflow_server(tmp_path) as url:
        MlflowTracker(url).log_run(...)

The server runs in its own process group and the whole group is stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from workbench.core.errors import MissingDependency, TrackingError
from workbench.testing._process import free_port, log_tail


def _mlflow_exe() -> list[str]:
    beside = Path(sys.executable).parent / "mlflow"
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-m", "mlflow"]


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


@contextlib.contextmanager
def mlflow_server(
    folder: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    ready_timeout: float = 120.0,
) -> Iterator[str]:
    """Run `mlflow server` with `folder/mlflow.db` and `folder/artifacts`; yields its base URL.

    Readiness is polled on `/health` until `ready_timeout` seconds; the server log is
    `folder/mlflow-server.log` and its tail is in the error if the server does not come up.
    """
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - httpx is a core dependency
        raise MissingDependency("httpx", "tracking") from exc
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    log_path = folder / "mlflow-server.log"
    cmd = [
        *_mlflow_exe(),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=folder, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise TrackingError(f"mlflow server exited with code {proc.returncode}:\n{log_tail(log_path)}")
            try:
                if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TrackingError(
                    f"mlflow server at {url} not ready after {ready_timeout:.0f}s:\n{log_tail(log_path)}"
                )
            time.sleep(0.25)
        yield url
    finally:
        _stop(proc, grace=10.0)
