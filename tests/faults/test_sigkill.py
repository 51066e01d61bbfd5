"""SIGKILL the consumer at random points, many times, while it drains a few thousand
messages: before the commit, between commit and ack, with acks in flight. Restarted each
time; a final clean drain; then every message was handled and acked exactly once."""

from __future__ import annotations

import random
import time

import pytest

from messaging.models import Receipt
from tests.support.draining import drain_with_consumer
from tests.support.exactly_once import check_exactly_once, publish_many
from tests.support.rabbitmq import consumers_on, queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.faults

MESSAGES = 2000
KILLS = 8
#: Seconds each handler call sleeps, so the drain outlasts the kills (~150 messages/s).
PACE = "0.006"


@pytest.mark.parametrize(
    ("prefetch", "batch_size"),
    [(1, 1), (50, 20)],
    ids=["prefetch1", "prefetch50-batched"],
)
def test_sigkill_at_random_points_loses_nothing_and_handles_once(
    start_consumer, manage, fault_queue, prefetch, batch_size
):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ids = publish_many(fault_queue, MESSAGES)
    args = ("--prefetch", str(prefetch), "--batch-size", str(batch_size), "-v", "0")
    kills = 0
    while kills < KILLS and queue_depth(fault_queue):
        consumer = start_consumer(
            fault_queue,
            *args,
            handler="tests.support.handlers.record_paced",
            env={"MESSAGING_TEST_PACE": PACE},
        )
        wait_for(lambda c=consumer: consumers_on(fault_queue) or not c.alive(), timeout=60)
        assert consumer.alive(), consumer.describe()
        time.sleep(rng.uniform(0.3, 1.5))
        consumer.kill()
        kills += 1
        # The broker requeues what the dead consumer held once it sees the socket close.
        wait_for(lambda: consumers_on(fault_queue) == 0, timeout=30)
    handled_before_drain = Receipt.objects.acked().filter(queue_name=fault_queue).count()
    # The clean finish only has to take what is left, so it may as well be quick.
    drain_with_consumer(manage, fault_queue, "--prefetch", "50")
    receipts = Receipt.objects.filter(queue_name=fault_queue)
    context = (
        f"seed={seed} kills={kills} acked before the final drain={handled_before_drain} "
        f"redelivered={receipts.filter(redelivered=True).count()} "
        f"duplicates={receipts.filter(outcome='duplicate').count()}"
    )
    check_exactly_once(fault_queue, ids, context=context)
    assert kills >= KILLS // 2, f"the queue drained after {kills} kills: kill sooner"
