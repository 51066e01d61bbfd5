"""The wire format and the backend's options: pure code."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from messaging.task_backend.options import queue_name_problems, read_options
from messaging.task_backend.wire import TaskMessage, WireError, amqp_priority, decode, encode

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 12, 7, 21, 0, 0, 123456, tzinfo=UTC)


def test_round_trip_keeps_every_field() -> None:
    message = TaskMessage(
        task="app.tasks.send",
        args=[1, "x", None],
        kwargs={"lang": "de", "n": [1, 2]},
        backend="emails",
        queue_name="slow",
        priority=-20,
        enqueued_at=WHEN,
        run_after=WHEN,
    )
    assert decode(encode(message)) == message


def test_the_body_is_the_documented_json() -> None:
    body = json.loads(encode(TaskMessage(task="a.b", args=[1], kwargs={}, enqueued_at=WHEN)))
    assert body == {
        "version": 1,
        "task": "a.b",
        "backend": "default",
        "queue_name": "default",
        "args": [1],
        "kwargs": {},
        "priority": 0,
        "enqueued_at": "2026-12-07T21:00:00.123456+00:00",
        "run_after": None,
    }


def test_another_producer_may_send_only_the_required_fields() -> None:
    message = decode(b'{"version": 1, "task": "a.b", "args": [], "kwargs": {}, "new": 1}')
    assert (message.task, message.backend, message.queue_name, message.priority) == (
        "a.b",
        "default",
        "default",
        0,
    )
    assert message.enqueued_at is None and message.run_after is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "a JSON list, not an object"),
        (b'{"task": "a.b", "args": [], "kwargs": {}}', "unsupported task message version"),
        (b'{"version": 1, "args": [], "kwargs": {}}', "'task' must be a non-empty string"),
        (b'{"version": 1, "task": "a.b", "kwargs": {}}', "has no 'args'"),
        (b'{"version": 1, "task": "a.b", "args": {}, "kwargs": {}}', "'args' must be a list"),
        (b'{"version": 1, "task": "a.b", "args": [], "kwargs": []}', "'kwargs' must be an"),
        (
            b'{"version": 1, "task": "a.b", "args": [], "kwargs": {}, "priority": 101}',
            "not within -100..100",
        ),
        (
            b'{"version": 1, "task": "a.b", "args": [], "kwargs": {}, "priority": true}',
            "whole number",
        ),
        (
            b'{"version":1,"task":"a.b","args":[],"kwargs":{},"run_after":"2026-01-01T00:00"}',
            "with an offset",
        ),
    ],
)
def test_a_bad_body_is_refused_with_one_line(body: bytes, says: str) -> None:
    with pytest.raises(WireError, match=says) as caught:
        decode(body)
    assert "\n" not in str(caught.value)


def test_arguments_that_are_not_json_are_refused() -> None:
    with pytest.raises(WireError, match="not JSON"):
        encode(TaskMessage(task="a.b", args=[object()]))
    with pytest.raises(WireError, match="not JSON"):
        encode(TaskMessage(task="a.b", args=[float("nan")]))


@pytest.mark.parametrize(
    ("priority", "expected"), [(-100, 0), (-50, 2), (0, 5), (1, 5), (50, 8), (100, 10)]
)
def test_priorities_map_onto_the_queue_s_max_priority(priority: int, expected: int) -> None:
    assert amqp_priority(priority, 10) == expected


def test_priorities_keep_their_order_at_any_max_priority() -> None:
    for top in (1, 5, 10, 255):
        mapped = [amqp_priority(p, top) for p in range(-100, 101)]
        assert mapped == sorted(mapped) and mapped[0] == 0 and mapped[-1] == top


def test_options_default() -> None:
    options = read_options({}, "classic")
    assert options.broker_queue("emails") == "tasks.emails"
    assert options.queue_arguments() == {"x-max-priority": 10}
    assert options.problems == ()


def test_quorum_queues_have_no_priority_argument() -> None:
    options = read_options({"QUEUE_TYPE": "quorum"}, "classic")
    assert not options.priorities and options.queue_arguments() == {}
    assert read_options({}, "quorum").queue_type == "quorum"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"QUEUE_PREFIX": ""}, "QUEUE_PREFIX must be"),
        ({"QUEUE_PREFIX": "amq.x."}, "QUEUE_PREFIX must be"),
        ({"QUEUE_TYPE": "stream"}, "QUEUE_TYPE must be"),
        ({"MAX_PRIORITY": 0}, "MAX_PRIORITY must be"),
        ({"MAX_PRIORITY": 256}, "MAX_PRIORITY must be"),
        ({"TASK_MODULES": "app"}, "TASK_MODULES must be"),
        ({"QUEUE_PREFX": "x."}, "unknown option 'QUEUE_PREFX'"),
    ],
)
def test_bad_options_are_problems(given: dict, says: str) -> None:
    problems = read_options(given, "classic").problems
    assert len(problems) == 1 and says in problems[0]


def test_a_prefix_making_a_bad_queue_name_is_a_problem() -> None:
    options = read_options({"QUEUE_PREFIX": "x" * 250}, "classic")
    (problem,) = queue_name_problems(options, ["default"])
    assert problem.startswith("task queue 'xxx")
    assert queue_name_problems(read_options({}, "classic"), ["default", "emails"]) == []
