"""The three-node RabbitMQ cluster as the cluster suite's tests see it (the ``cluster``
fixture starts it): which node leads a queue or serves a consumer, nodes stopped for a
while, and the environment of a subprocess that uses every node."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from messaging.models import Message
from tests.support.consumers import ConsumerProcess
from tests.support.rabbitnode import Node, erlang_node_up


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


def statuses(ids: Sequence[str]) -> dict[str, int]:
    """How many of the messages ``ids`` are in each status."""
    return dict(
        Counter(Message.objects.filter(message_id__in=ids).values_list("status", flat=True))
    )
