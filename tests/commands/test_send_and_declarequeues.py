"""``manage.py send`` and ``manage.py declarequeues`` against the real broker.

Exit codes, stdin and stderr are checked through a real ``manage.py`` subprocess (the
``manage`` fixture, which shares the test database); the rest uses ``call_command``.
"""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import CommandError, call_command

from messaging import QueueMismatch, broker, conf
from messaging.models import Message, Queue
from tests.support.ports import closed_port
from tests.support.rabbitmq import queue_depth

PASSWORD = "wr0ng-Pa55w0rd"


def send(*args: str) -> str:
    out = io.StringIO()
    call_command("send", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def get_one(channel, queue: str):
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None, f"no message in {queue}"
    return properties, body


def error_line(proc) -> str:
    """The command failed with exactly one line on stderr; return it."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def live_url_with_password(password: str, port: int | None = None) -> str:
    params = broker.connection_parameters(conf.broker_urls()[0])
    vhost = "%2F" if params.virtual_host == "/" else params.virtual_host
    return (
        f"amqp://{params.credentials.username}:{password}@{params.host}:"
        f"{port or params.port}/{vhost}"
    )


# --------------------------------------------------------------------------- send: success


def test_send_body_argument(manage, queue_name, channel):
    proc = manage("send", queue_name, "Hello World!", input=b"")
    assert proc.returncode == 0, proc.stderr
    stdout = proc.stdout.decode()
    assert " [x] Sent" in stdout

    row = Message.objects.get()
    assert row.status == Message.Status.PUBLISHED
    assert row.body_bytes == b"Hello World!"
    assert row.message_id in stdout
    assert row.queue.name == queue_name

    properties, body = get_one(channel, queue_name)
    assert body == b"Hello World!"
    assert properties.message_id == row.message_id
    assert properties.delivery_mode == 2
    assert properties.headers is None


def test_send_non_ascii_body_argument_is_utf8(db, queue_name, channel):
    send(queue_name, "héllo ✓")
    assert Message.objects.get().body_bytes == "héllo ✓".encode()
    assert get_one(channel, queue_name)[1] == "héllo ✓".encode()


@pytest.mark.parametrize("body", [b"\xff\xfe\x00abc", b"", bytes(range(256))])
@pytest.mark.parametrize("dash", [True, False], ids=["dash", "omitted"])
def test_send_reads_stdin_bytes_exactly(manage, queue_name, channel, body, dash):
    args = ["send", queue_name] + (["-"] if dash else [])
    proc = manage(*args, input=body)
    assert proc.returncode == 0, proc.stderr
    assert Message.objects.get().body_bytes == body
    assert get_one(channel, queue_name)[1] == body


def test_send_count(db, queue_name, channel):
    out = send(queue_name, "many", "--count", "50")
    assert " [x] Sent 50 messages" in out

    rows = Message.objects.all()
    ids = {row.message_id for row in rows}
    assert len(rows) == 50
    assert len(ids) == 50
    assert {row.status for row in rows} == {Message.Status.PUBLISHED}
    assert queue_depth(queue_name) == 50

    received = set()
    for _ in range(50):
        properties, body = get_one(channel, queue_name)
        assert body == b"many"
        received.add(properties.message_id)
    assert received == ids


def test_send_count_must_be_positive(db, queue_name):
    with pytest.raises(CommandError, match="--count: must be at least 1"):
        send(queue_name, "x", "--count", "0")
    assert not Message.objects.exists()


def test_send_headers_with_options_between_queue_and_body(manage, queue_name, channel):
    proc = manage("send", queue_name, "--header", "a=b", "--header", "c=d=e", "the body", input=b"")
    assert proc.returncode == 0, proc.stderr
    row = Message.objects.get()
    assert row.headers == {"a": "b", "c": "d=e"}
    properties, body = get_one(channel, queue_name)
    assert body == b"the body"
    assert properties.headers == {"a": "b", "c": "d=e"}


def test_send_content_type(db, queue_name, channel):
    send(queue_name, '{"a": 1}', "--content-type", "application/json")
    assert Message.objects.get().content_type == "application/json"
    properties, body = get_one(channel, queue_name)
    assert properties.content_type == "application/json"
    assert body == b'{"a": 1}'


def test_send_transient(db, queue_name, channel):
    send(queue_name, "fleeting", "--transient")
    assert Message.objects.get().persistent is False
    assert get_one(channel, queue_name)[0].delivery_mode == 1


def test_send_default_is_persistent(db, queue_name, channel):
    send(queue_name, "lasting")
    assert Message.objects.get().persistent is True
    assert get_one(channel, queue_name)[0].delivery_mode == 2


def test_send_declares_a_new_queue_durable(db, queue_name):
    assert not Queue.objects.filter(name=queue_name).exists()
    send(queue_name, "x")
    assert Queue.objects.get(name=queue_name).durable is True
    with broker.connection() as conn:
        with pytest.raises(QueueMismatch) as info:
            broker.declare_queue(conn.channel(), broker.QueueSpec(queue_name, durable=False))
        assert info.value.argument == "durable"
        broker.declare_queue(conn.channel(), broker.QueueSpec(queue_name, durable=True))


def test_send_declares_a_queue_row_as_it_says(db, queue_name):
    Queue.objects.create(name=queue_name, arguments={"x-max-length": 2})
    send(queue_name, "x", "--count", "3")
    assert queue_depth(queue_name) == 2  # x-max-length 2 is in force
    with broker.connection() as conn:
        spec = broker.QueueSpec(queue_name, arguments={"x-max-length": 2})
        broker.declare_queue(conn.channel(), spec)
        with pytest.raises(QueueMismatch) as info:
            broker.declare_queue(conn.channel(), queue_name)
        assert info.value.argument == "x-max-length"


def test_send_to_an_exchange(db, queue_name, channel):
    key = f"rk-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue_name)
    channel.queue_bind(queue_name, "amq.direct", routing_key=key)
    out = send(key, "routed", "--exchange", "amq.direct")
    assert "exchange 'amq.direct'" in out
    send("ignored", "routed 2", "--exchange", "amq.direct", "--routing-key", key)
    assert get_one(channel, queue_name)[1] == b"routed"
    assert get_one(channel, queue_name)[1] == b"routed 2"
    assert {(m.exchange, m.routing_key, m.queue_id) for m in Message.objects.all()} == {
        ("amq.direct", key, None)
    }
    assert not Queue.objects.exists()


# --------------------------------------------------------------------------- send: errors


def test_send_bad_header(manage, queue_name):
    proc = manage("send", queue_name, "--header", "bad", "body", input=b"")
    line = error_line(proc)
    assert "--header expects KEY=VALUE" in line
    assert "'bad'" in line
    assert not Message.objects.exists()
    assert not Queue.objects.exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("é" * 128, "256 bytes"),
        ("q" * 256, "256 bytes"),
        ("amq.tasks", "reserved"),
    ],
    ids=["256-bytes-128-chars", "256-chars", "amq-prefix"],
)
def test_send_invalid_queue_name(manage, name, reason):
    proc = manage("send", name, "body", input=b"")
    line = error_line(proc)
    assert "invalid queue name" in line
    assert reason in line
    assert not Message.objects.exists()
    assert not Queue.objects.exists()


def test_send_routing_key_without_exchange(manage, queue_name):
    proc = manage("send", queue_name, "body", "--routing-key", "rk", input=b"")
    assert "--routing-key needs --exchange" in error_line(proc)
    assert not Message.objects.exists()
    assert not Queue.objects.exists()


def test_send_unroutable_exchange(manage):
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    proc = manage("send", key, "body", "--exchange", "amq.direct", input=b"")
    line = error_line(proc)
    expected = f"unroutable: no queue bound for exchange amq.direct routing key {key}"
    assert expected in line
    assert "1 message(s) recorded as failed" in line
    row = Message.objects.get()
    assert row.status == Message.Status.FAILED
    assert row.last_error == expected
    assert not Queue.objects.exists()  # with --exchange, QUEUE is only a routing key


def test_send_wrong_password(manage, queue_name):
    url = live_url_with_password(PASSWORD)
    proc = manage("send", queue_name, "body", input=b"", env={"MESSAGING_BROKER_URL": url})
    line = error_line(proc)
    assert "username/password" in line
    assert "1 message(s) left pending for the relay" in line
    assert PASSWORD not in proc.stderr.decode()
    assert PASSWORD not in proc.stdout.decode()
    # Nothing is lost: the row waits for the relay (a fixed password lets it through).
    row = Message.objects.get()
    assert row.status == Message.Status.PENDING
    assert row.attempts == 1
    assert row.next_attempt_at is not None
    assert "username/password" in row.last_error
    assert PASSWORD not in row.last_error


def test_send_broker_on_closed_port(manage, queue_name):
    url = live_url_with_password(PASSWORD, port=closed_port())
    proc = manage("send", queue_name, "body", input=b"", env={"MESSAGING_BROKER_URL": url})
    line = error_line(proc)
    assert "connection refused" in line
    assert "1 message(s) left pending for the relay" in line
    assert PASSWORD not in proc.stderr.decode()
    row = Message.objects.get()
    assert row.status == Message.Status.PENDING
    assert row.attempts == 1
    assert "connection refused" in row.last_error
    assert PASSWORD not in row.last_error


# --------------------------------------------------------------------------- declarequeues


def test_declarequeues_declares_every_row_and_is_idempotent(manage, queue_name, request):
    capped = request.node.make_queue_name()
    Queue.objects.create(name=queue_name)
    Queue.objects.create(name=capped, arguments={"x-max-length": 5}, dead_letter_exchange="dlx")
    assert queue_depth(queue_name) is None

    first = manage("declarequeues", input=b"")
    assert first.returncode == 0, first.stderr
    assert f"declared {queue_name}" in first.stdout.decode()
    assert queue_depth(queue_name) == 0
    assert queue_depth(capped) == 0
    with broker.connection() as conn:
        # Declared exactly as the row says.
        broker.declare_queue(conn.channel(), Queue.objects.get(name=capped))
        with pytest.raises(QueueMismatch):
            broker.declare_queue(conn.channel(), capped)

    second = manage("declarequeues", input=b"")
    assert second.returncode == 0, second.stderr
    assert second.stderr.decode() == ""


def test_declarequeues_reports_drift(manage, queue_name, request, channel):
    in_sync = request.node.make_queue_name()
    Queue.objects.create(name=in_sync)
    Queue.objects.create(name=queue_name, arguments={"x-max-length": 5})
    channel.queue_declare(queue_name, durable=True)  # on the broker without x-max-length

    proc = manage("declarequeues", input=b"")
    assert proc.returncode != 0
    stderr = proc.stderr.decode()
    assert queue_name in stderr
    assert "x-max-length" in stderr
    assert (
        "1 queue(s) differ from their Queue row or were refused" in stderr.strip().splitlines()[-1]
    )
    assert queue_depth(in_sync) == 0  # the other rows are still declared


def test_declarequeues_unknown_name(db):
    with pytest.raises(CommandError, match="no Queue row named nope"):
        call_command("declarequeues", "nope", stdout=io.StringIO())
