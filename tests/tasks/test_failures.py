"""Failing tasks retry through the consumer's broker-held delays, then end FAILED with
every attempt's error; a message that names anything but a task of this backend is
dead-lettered with one line, never run."""

from __future__ import annotations

import json
import uuid

import pika
import pytest

from messaging import broker
from messaging.consumer.retry_policy import requested_delay
from messaging.models import Receipt, TaskRecord
from messaging.task_backend import RabbitMQTask
from messaging.task_backend.compat import InvalidTask, TaskResultStatus
from messaging.task_backend.worker import ask_delay
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.draining import drain
from tests.tasks import jobs
from tests.tasks.conftest import PREFIX, wait_status

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = f"{PREFIX}default"


def test_a_failing_task_retries_then_fails_with_every_error(task_worker) -> None:
    worker = task_worker()  # MAX_ATTEMPTS 3, RETRY_DELAY 0.2 s doubling
    result = jobs.always_fails.enqueue("boom")
    wait_status(result, "FAILED", worker=worker)
    assert [e.exception_class_path for e in result.errors] == ["builtins.KeyError"] * 3
    assert all("KeyError: 'boom'" in e.traceback for e in result.errors)
    assert result.attempts == 3 and result.worker_ids == [worker.name] * 3
    assert result.finished_at >= result.last_attempted_at >= result.started_at
    with pytest.raises(ValueError, match="failed"):
        result.return_value  # noqa: B018 - the property raises
    receipts = Receipt.objects.filter(message_id=result.id).order_by("id")
    assert [(r.attempt, r.outcome) for r in receipts] == [
        (1, "requeued"),
        (2, "requeued"),
        (3, "dead_lettered"),
    ]
    # the broker held each retry for the delay (0.2 s, then 0.4 s)
    pairs = zip(receipts, receipts[1:], strict=False)
    gaps = [(b.received_at - a.finished_at).total_seconds() for a, b in pairs]
    assert gaps[0] >= 0.15 and gaps[1] >= 0.35, gaps
    stop_and_wait(worker)
    ((dead_id, dead_body),) = drain(f"{QUEUE}.dlq")
    assert dead_id == result.id
    assert json.loads(dead_body)["task"] == "tests.tasks.jobs.always_fails"


def test_ready_between_attempts(task_worker) -> None:
    worker = task_worker(RETRY_DELAY=3, RETRY_MAX_DELAY=3)
    result = jobs.always_fails.enqueue("wait")
    wait_running(worker, lambda: len(TaskRecord.objects.get(result_id=result.id).errors) == 1)
    result.refresh()
    assert result.status == TaskResultStatus.READY and result.attempts == 1
    assert Receipt.objects.get(message_id=result.id).next_attempt_at is not None


def test_a_task_s_own_max_attempts_ends_it_sooner(task_worker) -> None:
    worker = task_worker()  # the queue allows 3
    result = jobs.fails_twice_max.enqueue("twice")
    wait_status(result, "FAILED", worker=worker)
    assert len(result.errors) == 2
    outcomes = list(
        Receipt.objects.filter(message_id=result.id)
        .order_by("id")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["requeued", "rejected"]


def test_a_task_s_own_retry_delay_is_held_by_the_broker(task_worker) -> None:
    worker = task_worker(MAX_ATTEMPTS=2)  # the queue's RETRY_DELAY: 0.2 s
    result = jobs.fails_with_own_delay.enqueue("later")  # @task(retry_delay=1.5)
    wait_status(result, "FAILED", worker=worker)
    first, last = Receipt.objects.filter(message_id=result.id).order_by("id")
    assert (first.outcome, last.outcome) == ("requeued", "dead_lettered")
    held = (first.next_attempt_at - first.finished_at).total_seconds()
    assert 1.4 <= held <= 1.6, held
    gap = (last.received_at - first.finished_at).total_seconds()
    assert gap >= 1.45, gap
    assert len(result.errors) == 2 and result.worker_ids == [worker.name] * 2


@pytest.mark.parametrize("delay", [-1, "5", True, float("nan"), float("inf")])
def test_a_retry_delay_that_is_not_seconds_is_refused(delay: object) -> None:
    with pytest.raises(InvalidTask, match="retry_delay must be a number of seconds"):
        RabbitMQTask(func=jobs.plain_function, retry_delay=delay)


def test_retry_delay_reaches_the_task_and_doubles_up_to_the_cap(settings) -> None:
    assert jobs.fails_with_own_delay.retry_delay == 1.5
    settings.MESSAGING = {**settings.MESSAGING, "RETRY_MAX_DELAY": 4}
    delays = []
    for attempt in (1, 2, 3, 4):
        exc = RuntimeError("x")
        ask_delay(jobs.fails_with_own_delay, attempt, exc)
        delays.append(requested_delay(exc))
    assert delays == [1.5, 3.0, 4.0, 4.0]
    exc = RuntimeError("x")
    ask_delay(jobs.always_fails, 1, exc)  # no retry_delay of its own: the queue's
    assert requested_delay(exc) is None


def publish_raw(body: bytes, message_id: str, queue: str = QUEUE) -> None:
    with broker.connection() as conn:
        channel = conn.channel()
        channel.queue_declare(queue, passive=True)
        channel.basic_publish(
            "",
            queue,
            body,
            pika.BasicProperties(message_id=message_id, content_type="application/json"),
        )


def task_body(path: str, *args: object) -> bytes:
    return json.dumps({"version": 1, "task": path, "args": list(args), "kwargs": {}}).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (task_body("os.system", "touch /tmp/pwned-by-a-task"), "'os.system' is not a task"),
        (task_body("tests.tasks.jobs.plain_function"), "is not a task (a function)"),
        (task_body("subprocess.run", ["true"]), "'subprocess.run' is not a task"),
        (task_body("some_module_never_loaded.x"), "is not loaded"),
        (b'{"version": 1, "args": [], "kwargs": {}}', "'task' must be a non-empty string"),
        (b"not json", "not JSON"),
    ],
)
def test_a_message_that_names_no_task_is_dead_lettered_unrun(task_worker, body, says) -> None:
    worker = task_worker()
    jobs.noop.enqueue()  # declares the queue
    message_id = str(uuid.uuid4())
    publish_raw(body, message_id)
    receipt = wait_running(worker, lambda: Receipt.objects.filter(message_id=message_id).first())
    stop_and_wait(worker)
    assert receipt.outcome == "rejected" and says in receipt.error
    assert "\n" not in receipt.error
    assert drain(f"{QUEUE}.dlq") == [(message_id, body)]
    assert "not run: " in worker.stderr and says in worker.stderr
    assert not TaskRecord.objects.filter(result_id=message_id).exists()


def test_a_task_of_another_queue_is_refused(task_worker) -> None:
    worker = task_worker()
    jobs.noop.enqueue()
    message_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "version": 1,
            "task": "tests.tasks.jobs.add",
            "args": [1, 2],
            "kwargs": {},
            "queue_name": "other",
        }
    ).encode()
    publish_raw(body, message_id)
    receipt = wait_running(worker, lambda: Receipt.objects.filter(message_id=message_id).first())
    assert receipt.outcome == "rejected" and "arrived on" in receipt.error


def test_another_producer_s_task_runs_and_gets_a_result(task_worker) -> None:
    worker = task_worker()
    jobs.noop.enqueue()
    message_id = str(uuid.uuid4())
    publish_raw(task_body("tests.tasks.jobs.add", 40, 2), message_id)
    result = wait_running(
        worker,
        lambda: TaskRecord.objects.filter(result_id=message_id, status="SUCCESSFUL").first(),
    )
    assert result.return_value == 42 and result.task_path == "tests.tasks.jobs.add"
    assert jobs.add.get_result(message_id).return_value == 42
