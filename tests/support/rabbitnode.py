"""A RabbitMQ node of the tests' own, beside the default broker: the cluster suite's three
nodes (tests/cluster/conftest.py) and the management node of tests/admin/test_unacked.py.

Each :class:`Node` has its own name, ports, config file, enabled-plugins file, data and
log directories under a temporary directory (owned by the ``rabbitmq`` user when run as
root, as ``rabbitmq-server`` then switches to it), and is driven with
``rabbitmq-server -detached`` and ``rabbitmqctl -n <its name>``: the default node
(``rabbit@localhost``, 5672) and every other node are never touched. No plugin is enabled
unless the node has a ``management_port`` (then ``rabbitmq_management`` listens on
127.0.0.1 there, with statistics every 500 ms so counts show up quickly).

A suite holds a lock file (:func:`held_lock`) while its nodes run, so two test runs on
one machine (SQLite and PostgreSQL side by side) take turns; a node found running while
holding it can only be left over by an interrupted run, and :func:`reclaim` stops it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

START_TIMEOUT = 120
CTL_TIMEOUT = 90
#: The management node's statistics interval (RabbitMQ's default is 5000 ms).
STATISTICS_INTERVAL_MS = 500


def rabbitmq_installed() -> bool:
    return shutil.which("rabbitmq-server") is not None and shutil.which("rabbitmqctl") is not None


@dataclass
class Node:
    """One node of the tests' own."""

    short: str
    port: int
    dist_port: int
    base: Path
    #: Where ``rabbitmq_management`` listens (None: the plugin is not enabled).
    management_port: int | None = None

    @property
    def name(self) -> str:
        return f"{self.short}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def management_url(self) -> str:
        if self.management_port is None:
            raise ValueError(f"{self.name} has no management plugin")
        return f"http://guest:guest@127.0.0.1:{self.management_port}/"

    @property
    def address(self) -> str:
        """How ``-v 2`` names it: ``host:port``."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.base / "pid"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.pid_file),
        )
        return env

    def prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        config = f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        plugins = "[].\n"
        if self.management_port is not None:
            config += (
                f"management.tcp.port = {self.management_port}\n"
                "management.tcp.ip = 127.0.0.1\n"
                f"collect_statistics_interval = {STATISTICS_INTERVAL_MS}\n"
            )
            plugins = "[rabbitmq_management].\n"
        (self.base / "rabbitmq.conf").write_text(config)
        (self.base / "enabled_plugins").write_text(plugins)
        give_to_rabbitmq(self.base)

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT, check: bool = True) -> str:
        r = subprocess.run(
            ["rabbitmqctl", "-n", self.name, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and r.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl -n {self.name} {' '.join(args)}: {r.stderr.strip() or r.stdout}"
            )
        return r.stdout

    def start(self) -> None:
        """Start the Erlang node and the app; returns once it takes AMQP connections."""
        with suppress(FileNotFoundError):
            self.pid_file.unlink()
        r = subprocess.run(
            ["rabbitmq-server", "-detached"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmq-server ({self.name}): {r.stderr.strip() or r.stdout}")
        self.ctl("wait", str(self.pid_file), "--timeout", str(START_TIMEOUT), timeout=150)
        self.ctl("await_startup", timeout=150)
        self.wait_answering()

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app", timeout=300)
        self.ctl("await_startup", timeout=150)
        self.wait_answering()

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM (no clean shutdown at all)."""
        pid = int(self.pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self.ctl("stop", timeout=120, check=False)

    def answers(self) -> bool:
        try:
            conn = pika.BlockingConnection(
                pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=2")
            )
        except Exception:  # noqa: BLE001 - not up (yet)
            return False
        conn.close()
        return True

    def running(self) -> bool:
        return self.ctl("-q", "eval", "rabbit:is_running().", check=False).strip() == "true"

    def wait_answering(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} does not take AMQP connections on {self.port}")
            time.sleep(0.3)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def give_to_rabbitmq(path: Path) -> None:
    """``rabbitmq-server`` run as root drops to the ``rabbitmq`` user: it must own its dirs."""
    if os.geteuid() != 0:
        return
    subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(path)], check=True)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def erlang_node_up(node: Node) -> bool:
    out = node.ctl("-q", "eval", "ok.", check=False, timeout=30)
    return out.strip() == "ok"


def reclaim(node: Node, needs: str) -> None:
    """Stop ``node`` if an interrupted run left it running (the caller holds the lock);
    fail the test with ``needs`` if something else has its port."""
    if port_open(node.dist_port) and erlang_node_up(node):
        node.stop()  # left over by an interrupted run (we hold the lock)
    if node.answers():
        pytest.fail(f"port {node.port} is taken: {needs}")


@contextmanager
def held_lock(path: Path, wait: float) -> Iterator[None]:
    """Hold ``path`` (an exclusive ``flock``) for the block, waiting up to ``wait`` s."""
    with path.open("a") as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test run has held {path} for {wait}s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
