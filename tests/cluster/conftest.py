"""The cluster suite's own RabbitMQ: three nodes on loopback beside the default broker.

``msgc1@localhost`` .. ``msgc3@localhost`` listen on 127.0.0.1:5673-5675 (Erlang
distribution on 25673-25675), each with its own config file, data and log directories
under one temporary directory (owned by the ``rabbitmq`` user when run as root, as
``rabbitmq-server`` then switches to it) and an empty plugins file (no management or
prometheus listener to collide). They are started once per test session, joined to
``msgc1``, and stopped at the end. The default node (``rabbit@localhost``, 5672) and
every other node are never touched: each ``rabbitmqctl`` here names its node (``-n``).

Without ``rabbitmq-server`` on the machine the suite is skipped (it runs its own nodes;
there is nothing else it could test against).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest

from messaging.models import Message
from tests.faults.conftest import ConsumerProcess, start_consumer  # noqa: F401 - a fixture

START_TIMEOUT = 120
CTL_TIMEOUT = 90


@dataclass
class Node:
    """One node of the test cluster."""

    short: str
    port: int
    dist_port: int
    base: Path

    @property
    def name(self) -> str:
        return f"{self.short}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

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
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        _give_to_rabbitmq(self.base)

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
        while _alive(pid) and time.monotonic() < deadline:
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _give_to_rabbitmq(path: Path) -> None:
    """``rabbitmq-server`` run as root drops to the ``rabbitmq`` user: it must own its dirs."""
    if os.geteuid() != 0:
        return
    subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(path)], check=True)


class Cluster:
    """The three nodes, and what the tests ask about them."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = list(nodes)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, name_or_address: str) -> Node:
        for node in self.nodes:
            if name_or_address in (node.name, node.short, node.address):
                return node
        raise KeyError(name_or_address)

    def up(self) -> list[Node]:
        return [node for node in self.nodes if node.answers()]

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` on the first node that is running."""
        errors = []
        for node in self.nodes:
            try:
                return node.ctl(*args)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors.append(str(exc))
        raise RuntimeError("; ".join(errors))

    def leader(self, queue: str) -> Node:
        """The node leading quorum queue ``queue`` (or the home node of a classic one)."""
        out = self.ctl("-q", "list_queues", "name", "leader", "pid", "--no-table-headers")
        for line in out.splitlines():
            parts = line.split("\t")
            if parts and parts[0] == queue:
                leader = parts[1].strip() if len(parts) > 1 else ""
                if not leader and len(parts) > 2:  # a classic queue: its pid names the node
                    leader = parts[2].strip().lstrip("<").split(".")[0]
                return self.node(leader)
        raise KeyError(f"no queue {queue!r} on the cluster")

    def heal(self) -> None:
        """Start whatever is not running (used in ``finally``)."""
        for node in self.nodes:
            if node.answers():
                continue
            if _erlang_node_up(node):
                node.start_app()
            else:
                node.start()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _erlang_node_up(node: Node) -> bool:
    out = node.ctl("-q", "eval", "ok.", check=False, timeout=30)
    return out.strip() == "ok"


NODES = [("msgc1", 5673, 25673), ("msgc2", 5674, 25674), ("msgc3", 5675, 25675)]
#: Held while a test session uses the cluster: two runs on one machine (SQLite and
#: PostgreSQL side by side) take turns, and a node found running while holding it can
#: only be left over by an interrupted run, so it is stopped.
LOCK_FILE = Path(tempfile.gettempdir()) / "messaging-cluster-suite.lock"
LOCK_WAIT = 1200


@contextmanager
def cluster_lock() -> Iterator[None]:
    with LOCK_FILE.open("a") as lock:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test run has held {LOCK_FILE} for {LOCK_WAIT}s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Start and join the three nodes (once per session); stop them at the end."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmq-server is not installed: the cluster suite runs its own nodes")
    with cluster_lock():
        yield from _run_cluster()


def _run_cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="messaging-cluster-"))
    base.chmod(0o755)
    nodes = [Node(short, port, dist, base / short) for short, port, dist in NODES]
    for node in nodes:
        if _port_open(node.dist_port) and _erlang_node_up(node):
            node.stop()  # left over by an interrupted run (we hold the lock)
        if node.answers():
            pytest.fail(f"port {node.port} is taken: the cluster suite needs 5673-5675 free")
        node.prepare()
    _give_to_rabbitmq(base)
    cluster = Cluster(nodes)
    try:
        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(Node.start, nodes))
        for node in nodes[1:]:
            node.stop_app()
            node.ctl("join_cluster", nodes[0].name)
            node.start_app()
        yield cluster
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def on_cluster(cluster: Cluster, settings: Any) -> Iterator[Cluster]:
    """This process's MESSAGING['BROKER_URL'] is the cluster's three URLs; every node is
    running again when the test ends (a test stops some: restarted in ``finally`` too)."""
    settings.MESSAGING = {**settings.MESSAGING, "BROKER_URL": cluster.urls}
    cluster.heal()
    yield cluster
    cluster.heal()


def cluster_env(urls: Sequence[str], **messaging: Any) -> dict[str, str]:
    """Environment for a subprocess on the cluster (``urls``) with more MESSAGING."""
    values = {"BROKER_URL": list(urls), "RECONNECT_MAX_DELAY": 2.0, **messaging}
    return {"MESSAGING_TEST_SETTINGS": json.dumps(values)}


def connected_to(consumer: ConsumerProcess, cluster: Cluster, timeout: float = 60) -> Node:
    """The node a consumer (``-v 2``) says it consumes on, last time it said so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in consumer.stderr.splitlines() if "on broker node " in line]
        if lines:
            address = lines[-1].split("on broker node ", 1)[1].split()[0]
            return cluster.node(address)
        if not consumer.alive():
            pytest.fail(f"consumer exited: {consumer.describe()}")
        time.sleep(0.1)
    pytest.fail(f"consumer never said which node it consumes on: {consumer.describe()}")


@contextmanager
def node_stopped(cluster: Cluster, *nodes: Node) -> Iterator[None]:
    """``stop_app`` on ``nodes`` for the block; started again in ``finally``."""
    try:
        for node in nodes:
            node.stop_app()
        yield
    finally:
        cluster.heal()


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, *, interval: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def statuses(ids: Sequence[str]) -> dict[str, int]:
    from collections import Counter

    return dict(
        Counter(Message.objects.filter(message_id__in=ids).values_list("status", flat=True))
    )
