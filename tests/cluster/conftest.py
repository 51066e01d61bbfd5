"""The cluster suite's own RabbitMQ: three nodes on loopback beside the default broker.

``msgc1@localhost`` .. ``msgc3@localhost`` listen on 127.0.0.1:5673-5675 (Erlang
distribution on 25673-25675), each a :class:`tests.support.rabbitnode.Node` with its own config
file, data and log directories under one temporary directory (owned by the ``rabbitmq``
user when run as root, as ``rabbitmq-server`` then switches to it) and an empty plugins
file (no management or prometheus listener to collide). They are started once per test
session, joined to ``msgc1``, and stopped at the end. The default node
(``rabbit@localhost``, 5672) and every other node are never touched: each ``rabbitmqctl``
here names its node (``-n``).

Without ``rabbitmq-server`` on the machine the suite is skipped (it runs its own nodes;
there is nothing else it could test against).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from messaging.models import Message
from tests.faults.conftest import ConsumerProcess, start_consumer  # noqa: F401 - a fixture
from tests.support.rabbitnode import (  # noqa: F401 - Node and the rest stay importable from here
    CTL_TIMEOUT,
    START_TIMEOUT,
    Node,
    erlang_node_up,
    give_to_rabbitmq,
    held_lock,
    rabbitmq_installed,
    reclaim,
)


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
            if erlang_node_up(node):
                node.start_app()
            else:
                node.start()


NODES = [("msgc1", 5673, 25673), ("msgc2", 5674, 25674), ("msgc3", 5675, 25675)]
#: Held while a test session uses the cluster: two runs on one machine (SQLite and
#: PostgreSQL side by side) take turns, and a node found running while holding it can
#: only be left over by an interrupted run, so it is stopped.
LOCK_FILE = Path(tempfile.gettempdir()) / "messaging-cluster-suite.lock"
LOCK_WAIT = 1200


def cluster_lock() -> AbstractContextManager[None]:
    return held_lock(LOCK_FILE, LOCK_WAIT)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Start and join the three nodes (once per session); stop them at the end."""
    if not rabbitmq_installed():
        pytest.skip("rabbitmq-server is not installed: the cluster suite runs its own nodes")
    with cluster_lock():
        yield from _run_cluster()


def _run_cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="messaging-cluster-"))
    base.chmod(0o755)
    nodes = [Node(short, port, dist, base / short) for short, port, dist in NODES]
    for node in nodes:
        reclaim(node, "the cluster suite needs 5673-5675 free")
        node.prepare()
    give_to_rabbitmq(base)
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
