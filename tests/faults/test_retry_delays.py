"""Retry delays held by the broker (``RETRY_DELAY`` > 0): a failing message waits in
``<queue>.delay.<ms>`` while the consumer goes straight on, its attempts are at least the
configured delays apart, it ends in ``<queue>.dlq`` after MAX_ATTEMPTS; a consumer
SIGKILLed between the delayed copy's confirm and the ack gives a duplicate the receipts
recognise (the handler runs once per attempt); a broker restart while messages wait in
delay queues loses none. Classic and quorum source queues."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from messaging import broker
from messaging.amqp.retry_delays import delay_queue_name
from messaging.consumer import fault_points
from messaging.models import Queue, Receipt, dead_letter_queue_name
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.delay_handlers import RUN_LOG
from tests.support.environment import settings_env
from tests.support.exactly_once import handled_counts, publish_many
from tests.support.killing_handlers import SIGKILL_AT
from tests.support.outages import broker_stopped
from tests.support.rabbitmq import queue_depth, rabbitmqctl
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

HANDLER = "tests.support.delay_handlers.log_run_fail_poison"
#: The same handler, in a consumer that SIGKILLs itself at the fault point named by
#: SIGKILL_AT in its environment.
KILLING_HANDLER = "tests.support.killing_handlers.log_run_fail_poison"
MAX_ATTEMPTS = 3


@pytest.fixture
def delayed_queue(fault_queue: str) -> Iterator[str]:
    """``fault_queue``; its delay queues are deleted from the broker afterwards."""
    yield fault_queue
    try:
        with broker.connection() as conn:
            for delay in (0.5, 1, 1.5, 2, 3, 4, 6):
                conn.channel().queue_delete(delay_queue_name(fault_queue, delay))
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own result
        pass


def poison_receipts(queue: str, message_id: str) -> list[Receipt]:
    return list(Receipt.objects.filter(queue_name=queue, message_id=message_id).order_by("id"))


def runs(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_a_failing_message_waits_on_the_broker_and_holds_nothing_up(
    manage, delayed_queue, queue_type, tmp_path
):
    queue, delay = delayed_queue, 1.5
    row = Queue.objects.create(name=queue, queue_type=queue_type)
    (poison,) = publish_many(row, 1, prefix="poison", headers={"poison": True})
    good = publish_many(row, 60, prefix="good")
    log = tmp_path / "runs.log"
    r = manage(
        "runconsumer",
        queue,
        "--handler",
        HANDLER,
        "--prefetch",
        "10",
        "--idle-timeout",
        "5",
        "-v",
        "0",
        env={
            RUN_LOG: str(log),
            **settings_env(MAX_ATTEMPTS=MAX_ATTEMPTS, RETRY_DELAY=delay, RETRY_MAX_DELAY=10),
        },
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]

    attempts = poison_receipts(queue, poison)
    assert [(x.attempt, x.outcome) for x in attempts] == [
        (1, "requeued"),
        (2, "requeued"),
        (3, "dead_lettered"),
    ]
    # The good ones did not wait for the failing one: all done before its 2nd attempt.
    good_done = max(
        Receipt.objects.acked().filter(queue_name=queue).values_list("finished_at", flat=True)
    )
    assert Receipt.objects.acked().filter(queue_name=queue).count() == len(good)
    assert good_done < attempts[1].received_at
    # Attempts at least the configured delays apart, and each receipt said when.
    for earlier, later, wait in (
        (attempts[0], attempts[1], delay),
        (attempts[1], attempts[2], 2 * delay),
    ):
        # The broker's TTL starts when it takes the delayed copy, a little before the
        # receipt's finished_at is stamped (20 ms once, under load): a 0.25 s allowance.
        assert later.received_at - earlier.finished_at >= timedelta(seconds=wait - 0.25)
        assert earlier.next_attempt_at is not None
        assert earlier.next_attempt_at - earlier.finished_at <= timedelta(seconds=wait + 1)
        assert earlier.next_attempt_at <= later.received_at + timedelta(seconds=0.1)
    assert attempts[2].next_attempt_at is None
    # (At prefetch 10 the first attempt may run twice: in its batch, then alone.)
    assert MAX_ATTEMPTS <= runs(log)[poison] <= MAX_ATTEMPTS + 1
    assert handled_counts() == Counter(dict.fromkeys(good, 1))

    # In the DLQ, once; nothing left waiting.
    assert wait_for(lambda: queue_depth(dead_letter_queue_name(queue)) == 1)
    assert queue_depth(queue) == 0
    names = [delay_queue_name(queue, delay), delay_queue_name(queue, 2 * delay)]
    assert [queue_depth(n) for n in names] == [0, 0]
    types = dict(
        line.split("\t")[:2]
        for line in rabbitmqctl("-q", "list_queues", "name", "type").splitlines()
        if "\t" in line
    )
    assert [types[n] for n in names] == [queue_type] * 2


def test_sigkill_between_the_delayed_copy_and_the_ack_gives_a_recognised_duplicate(
    manage, start_consumer, delayed_queue, tmp_path
):
    queue, delay = delayed_queue, 1.0
    row = Queue.objects.create(name=queue)
    (poison,) = publish_many(row, 1, prefix="poison", headers={"poison": True})
    good = publish_many(row, 5, prefix="good")
    log = tmp_path / "runs.log"
    env = {
        RUN_LOG: str(log),
        **settings_env(MAX_ATTEMPTS=MAX_ATTEMPTS, RETRY_DELAY=delay, RETRY_MAX_DELAY=10),
    }
    killed = start_consumer(
        queue,
        env={**env, SIGKILL_AT: fault_points.AFTER_DELAY_CONFIRMED},
        handler=KILLING_HANDLER,
    )
    assert killed.wait(timeout=60) == -9, killed.describe()
    # The copy was confirmed and the original not acked: both exist now.
    assert wait_for(lambda: queue_depth(queue) == 1 + len(good))
    r = manage(
        "runconsumer",
        queue,
        "--handler",
        HANDLER,
        "--idle-timeout",
        "5",
        "-v",
        "0",
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]

    outcomes = [(x.attempt, x.outcome) for x in poison_receipts(queue, poison)]
    assert outcomes[:2] == [(1, "requeued"), (1, "duplicate")], outcomes
    failed = [o for o in outcomes if o[1] != "duplicate"]
    assert failed == [(1, "requeued"), (2, "requeued"), (3, "dead_lettered")], outcomes
    assert runs(log)[poison] == MAX_ATTEMPTS  # the handler ran once per attempt
    assert wait_for(lambda: queue_depth(dead_letter_queue_name(queue)) == 1)
    assert queue_depth(queue) == 0
    assert handled_counts() == Counter(dict.fromkeys(good, 1))


@pytest.mark.broker_control
def test_messages_waiting_in_delay_queues_survive_a_broker_restart(start_consumer, delayed_queue):
    if not shutil.which("rabbitmqctl"):
        pytest.skip("needs rabbitmqctl to restart the broker")  # never the case in CI here
    queue, delay = delayed_queue, 3.0
    row = Queue.objects.create(name=queue)
    poisons = publish_many(row, 3, prefix="poison", headers={"poison": True})
    consumer = start_consumer(
        queue,
        handler=HANDLER,
        env=settings_env(
            MAX_ATTEMPTS=2, RETRY_DELAY=delay, RECONNECT_DELAY=0.2, RECONNECT_MAX_DELAY=1
        ),
    )
    first_attempts = Receipt.objects.filter(queue_name=queue, outcome="requeued")
    wait_running(consumer, lambda: first_attempts.count() == len(poisons), timeout=60)
    assert queue_depth(delay_queue_name(queue, delay)) == len(poisons)
    with broker_stopped():
        time.sleep(1)
    dead = Receipt.objects.filter(queue_name=queue, outcome="dead_lettered")
    wait_running(consumer, lambda: dead.count() == len(poisons), timeout=90)
    stop_and_wait(consumer)
    assert sorted(dead.values_list("message_id", flat=True)) == sorted(poisons)
    assert wait_for(lambda: queue_depth(dead_letter_queue_name(queue)) == len(poisons))
    assert queue_depth(delay_queue_name(queue, delay)) == 0
