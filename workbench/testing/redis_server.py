"""Run a real `redis-server` on loopback for tests: a free port, a temp dir, no persistence.

`redis_server()` yields a `RedisServer` whose `stop()` and `start()` take it down and bring it
back on the same port (a restart mid-test), e.g. to test the limiter's failure policy.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from workbench.core.errors import MissingDependency, ProviderUnavailable
from workbench.testing._process import free_port, log_tail


class RedisServer:
    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise MissingDependency("redis-server", "gateway (and the Debian package redis-server)")
        self.executable = executable
        self.folder = folder
        self.host = host
        self.port = port or free_port(host)
        self.url = f"redis://{host}:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, startup_timeout_s: float = 10.0) -> None:
        log_path = self.folder / "redis.log"
        cmd = [self.executable, "--bind", self.host, "--port", str(self.port), "--dir", str(self.folder)]
        cmd += ["--save", "", "--appendonly", "no", "--logfile", str(log_path), "--protected-mode", "yes"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(int(startup_timeout_s / 0.05)):
            if self._proc.poll() is not None:
                raise ProviderUnavailable(
                    f"redis-server exited with code {self._proc.returncode}:\n{log_tail(log_path)}"
                )
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise ProviderUnavailable(f"redis-server on port {self.port} did not start:\n{log_tail(log_path)}")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def redis_server(*, host: str = "127.0.0.1", port: int | None = None) -> Iterator[RedisServer]:
    """A started `RedisServer` (its `url` is `redis://host:port/0`), stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="redis-server-") as tmp:
        server = RedisServer(Path(tmp), host=host, port=port)
        server.start()
        try:
            yield server
        finally:
            server.stop()
