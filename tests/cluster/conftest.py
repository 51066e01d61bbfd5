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

import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.rabbitnode import Node, give_to_rabbitmq, held_lock, rabbitmq_installed, reclaim

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
