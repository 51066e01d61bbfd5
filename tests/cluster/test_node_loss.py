"""Any one node of a 3-node cluster stopped or killed while publishing, consuming,
retrying or dead-lettering: nothing lost, nothing ``failed``, every consumer still
running, every handler effect exactly once per message id (the Jepsen-style count of
tests/faults/conftest.py: published ids vs acked receipts vs handler effects).

Consumers run ``runconsumer -v 2`` subprocesses with ``BROKER_URL`` the list of the
cluster's URLs; each test ends by stopping them with SIGTERM (exit 0 expected)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from messaging import broker
from messaging.models import Message, Queue, Receipt, dead_letter_queue_name
from messaging.publishing.relay import relay_once
from tests.support.cluster import Cluster, cluster_env, connected_to, node_stopped, statuses
from tests.support.consumers import stop_and_wait
from tests.support.draining import drain
from tests.support.environment import env_with
from tests.support.exactly_once import acked_ids, check_exactly_once, handled_counts, publish_many
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

#: Messages per test: enough for a fault to land mid-stream, few enough for CI.
COUNT = 1000
#: Handler time per message (tests.support.handlers.record_paced): the fault lands mid-stream.
PACE = {"MESSAGING_TEST_PACE": "0.005"}
PACED = "tests.support.handlers.record_paced"


def quorum_queue(name: str) -> Queue:
    row = Queue.objects.create(name=name, queue_type=Queue.QueueType.QUORUM)
    result = broker.declare_queues([row])
    assert not result.failed and result.error is None, (result.failed, result.error)
    return row


def assert_none_failed(ids: list[str]) -> None:
    failed = Message.objects.filter(message_id__in=ids, status=Message.Status.FAILED)
    assert not failed.exists(), list(failed.values_list("last_error", flat=True)[:3])


def test_leader_stop_app_while_two_consumers_drain_a_quorum_queue(
    on_cluster: Cluster, start_consumer: Any, queue_name: str
) -> None:
    row = quorum_queue(queue_name)
    ids = publish_many(row, COUNT)
    env = env_with(cluster_env(on_cluster.urls), PACE)
    consumers = [
        start_consumer(queue_name, "--prefetch", "20", "-v", "2", handler=PACED, env=env)
        for _ in range(2)
    ]
    wait_for(lambda: len(acked_ids(queue_name)) >= COUNT // 5, 120, "a fifth acked")
    leader = on_cluster.leader(queue_name)
    with node_stopped(on_cluster, leader):
        wait_for(lambda: len(acked_ids(queue_name)) >= COUNT * 3 // 5, 180, "more acked")
        assert all(c.alive() for c in consumers), [c.describe() for c in consumers]
        assert on_cluster.leader(queue_name) is not leader  # a new leader took over
    wait_for(lambda: len(acked_ids(queue_name)) >= COUNT, 180, "every message acked")
    for consumer in consumers:
        assert consumer.alive(), consumer.describe()
        stop_and_wait(consumer)
    check_exactly_once(queue_name, ids, context=f"leader {leader.name} stopped")
    assert_none_failed(ids)


def test_sigkill_of_the_consumers_node_then_restart(
    on_cluster: Cluster, start_consumer: Any, queue_name: str
) -> None:
    row = quorum_queue(queue_name)
    ids = publish_many(row, COUNT)
    env = env_with(cluster_env(on_cluster.urls), PACE)
    consumer = start_consumer(queue_name, "--prefetch", "20", "-v", "2", handler=PACED, env=env)
    wait_for(lambda: len(acked_ids(queue_name)) >= COUNT // 5, 120, "a fifth acked")
    node = connected_to(consumer, on_cluster)
    try:
        node.kill()
        wait_for(
            lambda: connected_to(consumer, on_cluster) is not node, 60, "a reconnect elsewhere"
        )
        node.start()  # restarted: it rejoins the cluster on its own
    finally:
        on_cluster.heal()
    wait_for(lambda: len(acked_ids(queue_name)) >= COUNT, 180, "every message acked")
    assert consumer.alive(), consumer.describe()
    stop_and_wait(consumer)
    check_exactly_once(queue_name, ids, context=f"{node.name} killed")
    assert_none_failed(ids)


def test_leader_lost_while_send_publishes_leaves_rows_pending_then_relayed_once(
    on_cluster: Cluster, manage: Any, spawn: Any, start_consumer: Any, queue_name: str
) -> None:
    row = quorum_queue(queue_name)
    leader = on_cluster.leader(queue_name)
    # send knows only the leader's node, so losing it cuts send's own connection.
    env = cluster_env([leader.url], PUBLISH_RETRY_DELAY=0.0, CONFIRM_TIMEOUT=5.0)
    sender = spawn("send", queue_name, "payload", "--count", str(COUNT * 2), "-v", "0", env=env)
    try:
        # send saves its rows, then connects and publishes them: kill the node at once
        # (rabbitmqctl would take a second to start), while it connects or publishes.
        rows = Message.objects.filter(queue=row)
        wait_for(rows.exists, 120, "send's rows", interval=0.002)
        leader.kill()
        out, err = sender.communicate(timeout=300)
    finally:
        on_cluster.heal()
    ids = list(Message.objects.filter(queue=row).values_list("message_id", flat=True))
    assert len(ids) == COUNT * 2, (sender.returncode, err.decode()[-2000:])
    assert_none_failed(ids)  # pending (or published), never failed by the outage
    before = statuses(ids)
    assert before.get(Message.Status.PENDING), (before, err.decode()[-2000:])
    relay_env = cluster_env(on_cluster.urls, PUBLISH_RETRY_DELAY=0.0)
    for _ in range(3):  # a relay always runs on a cluster: a pass or three
        relayed = manage("relay", "--once", env=relay_env, timeout=300)
        assert relayed.returncode == 0, relayed.stderr.decode()[-2000:]
        assert_none_failed(ids)
        if statuses(ids) == {Message.Status.PUBLISHED: len(ids)}:
            break
    assert statuses(ids) == {Message.Status.PUBLISHED: len(ids)}, (before, statuses(ids))
    consumer = start_consumer(
        queue_name,
        "--prefetch",
        "50",
        "--idle-timeout",
        "5",
        "-v",
        "2",
        env=cluster_env(on_cluster.urls),
    )
    assert consumer.wait(timeout=300) == 0, consumer.describe()
    check_exactly_once(queue_name, ids, context=f"{leader.name} killed during send {before}")


def test_dead_letter_queue_node_down_while_a_poison_message_is_retried(
    on_cluster: Cluster, start_consumer: Any, queue_name: str
) -> None:
    row = quorum_queue(queue_name)
    dlq = dead_letter_queue_name(queue_name)
    assert on_cluster.ctl("-q", "list_queues", "name", "type").count(f"{dlq}\tquorum") == 1
    good = publish_many(row, 200, prefix="good")
    (poison,) = publish_many(row, 1, prefix="poison", headers={"poison": True})
    env = cluster_env(on_cluster.urls, MAX_ATTEMPTS=4, RETRY_DELAY=0.5)
    consumer = start_consumer(
        queue_name,
        "--prefetch",
        "10",
        "-v",
        "2",
        handler="tests.support.handlers.record_unless_poison",
        env=env,
    )
    wait_for(lambda: Receipt.objects.filter(message=poison).exists(), 60, "a first attempt")
    with node_stopped(on_cluster, on_cluster.leader(dlq)):
        wait_for(lambda: Receipt.objects.filter(message=poison).count() >= 2, 120, "a retry")
        assert consumer.alive(), consumer.describe()
    wait_for(
        lambda: Receipt.objects.filter(message=poison, outcome="dead_lettered").exists(),
        180,
        "the poison message dead-lettered",
    )
    wait_for(lambda: acked_ids(queue_name) >= set(good), 120, "the good messages acked")
    assert consumer.alive(), consumer.describe()
    stop_and_wait(consumer)
    acked = Counter(
        Receipt.objects.acked().filter(queue_name=queue_name).values_list("message_id", flat=True)
    )
    assert set(acked) == set(good) and set(acked.values()) == {1}
    assert handled_counts() == Counter(dict.fromkeys(good, 1))  # never the poison's
    # In the DLQ: the poison message, nothing else. (A connection lost between the
    # confirmed copy and the ack may leave a second copy: at-least-once, never lost.)
    copies = drain(dlq, ids=True, leave=True)
    assert copies and set(copies) == {poison}, copies
    assert Receipt.objects.filter(message=poison, outcome="dead_lettered").count() == len(copies)
    with broker.connection() as conn:
        assert broker.inspect_queue(conn.channel(), queue_name)[0] == 0


def test_every_node_of_the_consumers_list_down_for_a_while_then_back(
    on_cluster: Cluster, start_consumer: Any, queue_name: str
) -> None:
    row = quorum_queue(queue_name)
    ids = publish_many(row, COUNT // 2)
    first, *others = on_cluster.nodes
    urls = [node.url for node in others]  # the consumer knows only these two nodes
    env = env_with(cluster_env(urls), PACE)
    with node_stopped(on_cluster, *others):
        # Started while its nodes are down: it waits (logging each try), never exits.
        consumer = start_consumer(queue_name, "--prefetch", "20", "-v", "2", handler=PACED, env=env)
        wait_for(lambda: "broker not ready (try 3)" in consumer.stderr, 60, "three tries")
        assert consumer.alive(), consumer.describe()
        assert not acked_ids(queue_name)
    connected_to(consumer, on_cluster)
    wait_for(lambda: len(acked_ids(queue_name)) >= COUNT // 4, 120, "a half acked")
    with node_stopped(on_cluster, *others):  # and lost again once consuming
        wait_for(lambda: "broker connection lost" in consumer.stderr, 60, "the loss seen")
        assert consumer.alive(), consumer.describe()
    wait_for(lambda: len(acked_ids(queue_name)) >= len(ids), 180, "every message acked")
    assert consumer.alive(), consumer.describe()
    stop_and_wait(consumer)
    check_exactly_once(queue_name, ids, context=f"{[n.name for n in others]} down, {first.name} up")


def test_a_classic_queues_home_node_down_is_an_outage_not_a_failure(
    on_cluster: Cluster, start_consumer: Any, queue_name: str
) -> None:
    """The 404 "home node ... is down or inaccessible" of a classic queue: publish()
    leaves the row pending (error class QueueUnavailable), the consumer waits, and once
    the node is back the relay sends the row and the consumer handles it once."""
    from messaging import publish

    row = Queue.objects.create(name=queue_name)  # classic: it lives on one node
    first, *_ = on_cluster.nodes
    with override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": [first.url]}):
        assert broker.declare_queues([row]).declared == [queue_name]  # home: msgc1
    home = on_cluster.leader(queue_name)
    others = [node.url for node in on_cluster.nodes if node is not home]
    ids = publish_many(row, 100)
    consumer = start_consumer(queue_name, "--prefetch", "20", "-v", "2", env=cluster_env(others))
    wait_for(lambda: len(acked_ids(queue_name)) >= 100, 120, "the first messages acked")
    with node_stopped(on_cluster, home):
        with override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": others}):
            message = publish(row, b"while the home node is down")
        assert message.status == Message.Status.PENDING, message.last_error
        assert message.error_class == "QueueUnavailable", message.last_error
        wait_for(
            lambda: "QueueUnavailable" in consumer.stderr or "home node" in consumer.stderr,
            60,
            "the consumer seeing the queue down",
        )
        assert consumer.alive(), consumer.describe()
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)  # due now
    assert relay_once().published == 1
    ids.append(message.message_id)
    wait_for(lambda: len(acked_ids(queue_name)) >= len(ids), 120, "the late message acked")
    assert consumer.alive(), consumer.describe()
    stop_and_wait(consumer)
    check_exactly_once(queue_name, ids, context=f"home node {home.name} stopped")


def test_a_long_lived_publisher_keeps_rows_pending_when_a_queues_node_goes_down(
    on_cluster: Cluster, transactional_db: None, queue_name: str
) -> None:
    """The relay's publisher stays connected (its declarations cached) while the home
    node of a classic queue stops: the rows it then publishes stay pending."""
    from messaging.publishing import build_message
    from messaging.publishing.sending import publish_rows

    row = Queue.objects.create(name=queue_name)
    first, second, _ = on_cluster.nodes
    with override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": [first.url]}):
        assert broker.declare_queues([row]).declared == [queue_name]  # home: msgc1
    publisher = broker.PipelinedPublisher([second.url])
    try:
        before = [build_message(row, b"before")]
        Message.objects.bulk_create(before)
        assert publish_rows(before, publisher=publisher).published
        with node_stopped(on_cluster, first):
            during = [build_message(row, f"during{i}".encode()) for i in range(3)]
            Message.objects.bulk_create(during)
            result = publish_rows(during, publisher=publisher)
            assert not result.published
            rows = Message.objects.filter(pk__in=[m.pk for m in during])
            assert {(m.status, m.error_class) for m in rows} == {("pending", "QueueUnavailable")}, [
                m.last_error for m in rows
            ]
        Message.objects.filter(pk__in=[m.pk for m in during]).update(next_attempt_at=None)
        assert publish_rows(list(rows), publisher=publisher).published
    finally:
        publisher.close()
    assert statuses([m.message_id for m in [*before, *during]]) == {"published": 4}
