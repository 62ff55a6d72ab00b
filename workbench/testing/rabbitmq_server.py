"""Run a private RabbitMQ node on loopback for tests: free ports, its own temp dir, no plugins.

The node is `wb<port>@localhost` with its data (`RABBITMQ_MNESIA_BASE`), logs, config and
Erlang cookie (under a `HOME` in the temp dir) all inside one folder, so it neither needs nor
touches the system's RabbitMQ. `stop()` then `start()` restarts it on the same ports with the
same data dir: durable queues and persistent messages survive, as on a real restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from workbench.core.errors import MissingDependency, ProviderUnavailable
from workbench.testing._process import free_port, log_tail

# Debian's /usr/sbin wrappers switch to the `rabbitmq` user and its system paths; these do not.
LIB_BIN = Path("/usr/lib/rabbitmq/bin")
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def _executable(name: str) -> str:
    found = LIB_BIN / name
    if found.exists():
        return str(found)
    which = shutil.which(name)
    if which is None:
        raise MissingDependency(name, "gateway (and the Debian package rabbitmq-server)")
    return which


class RabbitMQServer:
    """A node in `folder`; `url` is `amqp://guest:guest@127.0.0.1:<port>/` (guest is allowed
    from loopback only, which is all this node listens on)."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1") -> None:
        self.server = _executable("rabbitmq-server")
        self.ctl = _executable("rabbitmqctl")
        self.folder = folder
        self.host = host
        self.port = free_port(host)
        self.dist_port = free_port(host)
        self.node = f"wb{self.port}@localhost"
        self.url = f"amqp://guest:guest@{host}:{self.port}/"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        (self.folder / "home").mkdir(parents=True, exist_ok=True)
        (self.folder / "log").mkdir(exist_ok=True)
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.host}:{self.port}\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
            "disk_free_limit.absolute = 10MB\n"
        )
        (self.folder / "enabled_plugins").write_text("[].\n")  # management and the rest off
        (self.folder / "rabbitmq-env.conf").write_text("")

    @property
    def env(self) -> dict[str, str]:
        f = self.folder
        return os.environ | {
            "HOME": str(f / "home"),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(f / "mnesia"),
            "RABBITMQ_LOG_BASE": str(f / "log"),
            "RABBITMQ_CONFIG_FILE": str(f / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(f / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(f / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(f / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(f / "rabbitmq.pid"),
        }

    @property
    def log_path(self) -> Path:
        return self.folder / "startup.log"

    def start(self, startup_timeout_s: float = 60.0) -> None:
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                [self.server],
                env=self.env,
                cwd=self.folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ProviderUnavailable(
                    f"rabbitmq-server exited with code {self._proc.returncode}:\n{log_tail(self.log_path)}"
                )
            if self.answers():
                return
            time.sleep(0.2)
        self.stop()
        raise ProviderUnavailable(f"RabbitMQ on port {self.port} did not start:\n{log_tail(self.log_path)}")

    def answers(self) -> bool:
        """An AMQP 0-9-1 handshake gets a `Connection.Start` method frame back."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(AMQP_HEADER)
                return sock.recv(1) == b"\x01"
        except OSError:
            return False

    def stop(self, timeout_s: float = 30.0) -> None:
        """`rabbitmqctl stop` (a clean shutdown that flushes the queues), else terminate."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(
                    [self.ctl, "-n", self.node, "stop"],
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=timeout_s,
                )
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # The node's own children (epmd stays: it is shared and harmless) end with its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)

    def restart(self) -> None:
        """Stop and start again on the same ports with the same data dir."""
        self.stop()
        self.start()


@contextlib.contextmanager
def rabbitmq_server(*, host: str = "127.0.0.1") -> Iterator[RabbitMQServer]:
    """A started `RabbitMQServer`, stopped and its folder removed on exit."""
    with tempfile.TemporaryDirectory(prefix="rabbitmq-") as tmp:
        server = RabbitMQServer(Path(tmp), host=host)
        server.start()
        try:
            yield server
        finally:
            server.stop()
