"""Run a real llama.cpp OpenAI-compatible server (`python -m llama_cpp.server`) for tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from workbench.core.errors import ProviderUnavailable
from workbench.testing._process import free_port, log_tail


@contextlib.contextmanager
def llama_server(
    model_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    model_alias: str = "local",
    startup_timeout_s: float = 180.0,
    poll_interval_s: float = 0.25,
) -> Iterator[str]:
    """Start the server on `host:port` (a free port by default), wait until `/v1/models`
    answers, and yield its base URL (`http://host:port/v1`). The process is stopped on exit.

    Raises `ProviderUnavailable` with the end of the server log if it exits or never answers.
    """
    port = port or free_port(host)
    base_url = f"http://{host}:{port}/v1"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", host, "--port", str(port)]
    cmd += ["--n_ctx", str(n_ctx), "--model_alias", model_alias]
    if n_threads is not None:
        cmd += ["--n_threads", str(n_threads)]
    with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
            try:
                _wait_ready(proc, f"{base_url}/models", log_path, startup_timeout_s, poll_interval_s)
                yield base_url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float, interval_s: float) -> None:
    # Bounded by a number of polls, not by how fast the machine is: the timeout is only a cap.
    for _ in range(max(1, int(timeout_s / interval_s))):
        if proc.poll() is not None:
            raise ProviderUnavailable(f"llama.cpp server exited with code {proc.returncode}:\n{log_tail(log_path)}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(interval_s)
    raise ProviderUnavailable(f"llama.cpp server at {url} did not become ready:\n{log_tail(log_path)}")
