"""`python -m workbench serve` in a subprocess, for tests and scripts that need the real server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from workbench.testing._process import free_port, log_tail


class WorkbenchServer:
    """Serve `bundle` on a free loopback port; `wait_ready()` polls `/readyz` (the golden set
    passed); `stop()` ends the process and returns its log. The log goes to a file, so a chatty
    server never blocks on a full pipe."""

    def __init__(self, bundle: str | Path, *args: str, cwd: str | Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_dir = tempfile.TemporaryDirectory(prefix="workbench-serve-")
        self.log_path = Path(self._log_dir.name) / "serve.log"
        cmd = [sys.executable, "-m", "workbench", "serve", str(bundle), "--port", str(self.port), *args]
        env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._final_log: str | None = None

    def wait_ready(self, timeout_s: float = 300, interval_s: float = 0.25) -> None:
        # Bounded by a number of polls: the timeout is a cap, not a speed requirement.
        for _ in range(max(1, int(timeout_s / interval_s))):
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{log_tail(self.log_path, 40)}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(interval_s)
        raise AssertionError(f"server at {self.url} never became ready:\n{log_tail(self.log_path, 40)}")

    def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL after 30 s) and return its whole log. Idempotent."""
        if self._final_log is not None:
            return self._final_log
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._final_log = self.log_path.read_text(errors="replace")
        self._log_dir.cleanup()
        return self._final_log
