"""runconsumer against the real broker: receipts, ack-after-commit, prefetch, signals,
crash safety, and the tutorial's own pika code in both directions."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
import pytest

from messaging import broker, publish
from messaging.models import Message, Queue, Receipt
from tests.support.environment import ROOT, manage_env
from tests.support.handlers import handled
from tests.support.rabbitmq import close_broker_connections, queue_depth
from tests.support.waiting import wait_for

TUTORIAL = Path(__file__).resolve().parents[1] / "tutorials" / "pika"


def publish_raw(queue: str, body: bytes, **props) -> None:
    with broker.connection() as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True)
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, **props))


def receipts(queue: str) -> list[Receipt]:
    return list(Receipt.objects.filter(queue_name=queue).order_by("id"))


# --------------------------------------------------------------------------- basics


def test_consumes_and_writes_receipt_then_acks(manage, queue_name):
    message = publish(queue_name, b"Hello World!")
    r = manage("runconsumer", queue_name, "--max-messages", "1")
    assert r.returncode == 0, r.stderr
    assert b" [x] Received b'Hello World!'" in r.stdout
    (receipt,) = receipts(queue_name)
    assert receipt.outcome == "acked"
    assert receipt.message == message
    assert receipt.message_id == message.message_id
    assert receipt.redelivered is False
    assert receipt.consumer_pid and receipt.consumer_host and receipt.consumer_tag
    assert receipt.finished_at >= receipt.received_at
    assert queue_depth(queue_name) == 0  # acked, not requeued on exit


def test_verbosity_zero_silences_per_message_output(manage, queue_name):
    publish(queue_name, b"quiet")
    r = manage("runconsumer", queue_name, "--max-messages", "1", "-v", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    assert receipts(queue_name)[0].outcome == "acked"


def test_idle_timeout_exits_zero(manage, queue_name):
    publish(queue_name, b"one")
    started = time.monotonic()
    r = manage("runconsumer", queue_name, "--idle-timeout", "0.5", "--name", "idler")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - started < 20
    (receipt,) = receipts(queue_name)
    assert receipt.consumer_name == "idler"


def test_several_queues_and_configured_handlers(manage, queue_name, request, settings):
    other = request.node.make_queue_name()
    publish(queue_name, b"a")
    publish(other, b"b")
    r = manage(
        "runconsumer",
        queue_name,
        other,
        "--max-messages",
        "2",
        "--handler",
        "tests.support.handlers.record",
    )
    assert r.returncode == 0, r.stderr
    assert {x.queue_name for x in Receipt.objects.all()} == {queue_name, other}
    assert handled() == 2


def test_unknown_queue_is_a_clear_error(manage):
    r = manage("runconsumer", f"test.nosuch.{uuid.uuid4().hex}")
    assert r.returncode != 0
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "unknown queue" in err[0]


def test_handler_that_does_not_import_is_a_clear_error(manage, queue_name):
    publish(queue_name, b"x")
    r = manage("runconsumer", queue_name, "--handler", "tests.support.handlers.nope")
    assert r.returncode != 0
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "does not import" in err[0]
    assert queue_depth(queue_name) == 1  # nothing consumed


def test_queue_on_broker_without_row_is_consumed_passively(manage, queue_name):
    publish_raw(queue_name, b"foreign")
    r = manage("runconsumer", queue_name, "--max-messages", "1")
    assert r.returncode == 0, r.stderr
    (receipt,) = receipts(queue_name)
    assert receipt.message_id == "" and receipt.message is None
    assert not Queue.objects.filter(name=queue_name).exists()


# --------------------------------------------------------------------------- failures


def test_handler_exception_leaves_receipt_and_requeues(manage, queue_name):
    publish(queue_name, b"boom")
    r = manage(
        "runconsumer", queue_name, "--max-messages", "1", "--handler", "tests.support.handlers.fail"
    )
    assert r.returncode == 0, r.stderr
    (receipt,) = receipts(queue_name)
    assert receipt.outcome == "requeued"
    assert "RuntimeError: handler failed on b'boom'" in receipt.error
    assert "Traceback" in receipt.traceback
    assert wait_for(lambda: queue_depth(queue_name) == 1)  # not lost


def test_failed_handler_database_work_is_rolled_back(manage, queue_name):
    publish(queue_name, b"x")
    r = manage(
        "runconsumer",
        queue_name,
        "--max-messages",
        "1",
        "--handler",
        "tests.support.handlers.record_then_fail",
    )
    assert r.returncode == 0, r.stderr
    assert handled() == 0
    assert receipts(queue_name)[0].outcome == "requeued"


def test_reject_moves_to_dead_letter_queue_with_rejected_receipt(manage, queue_name):
    publish(queue_name, b"no")
    r = manage(
        "runconsumer",
        queue_name,
        "--max-messages",
        "1",
        "--handler",
        "tests.support.handlers.reject",
    )
    assert r.returncode == 0, r.stderr
    (receipt,) = receipts(queue_name)
    assert receipt.outcome == "rejected" and receipt.error == "not for us"
    assert queue_depth(queue_name) == 0
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)  # never dropped


# --------------------------------------------------------------------------- pika-style


def test_tutorial_callback_that_acks_itself_is_acked_once(manage, queue_name):
    for i in range(3):
        publish(queue_name, f"m{i}")
    r = manage(
        "runconsumer",
        queue_name,
        "--max-messages",
        "3",
        "--handler",
        "tests.support.handlers.tutorial_callback",
    )
    assert r.returncode == 0, r.stderr
    # A double ack would be PRECONDITION_FAILED (unknown delivery tag), killing the channel.
    assert b"PRECONDITION" not in r.stderr
    assert [x.outcome for x in receipts(queue_name)] == ["acked"] * 3
    assert r.stdout.count(b" [x] Received b'm") == 3
    assert queue_depth(queue_name) == 0


def test_tutorial_callback_nack_without_requeue_is_rejected(manage, queue_name):
    publish(queue_name, b"x")
    r = manage(
        "runconsumer",
        queue_name,
        "--max-messages",
        "1",
        "--handler",
        "tests.support.handlers.tutorial_nack",
    )
    assert r.returncode == 0, r.stderr
    assert receipts(queue_name)[0].outcome == "rejected"
    assert queue_depth(queue_name) == 0


# --------------------------------------------------------------------------- interop


def test_tutorial_sender_to_runconsumer(manage, queue_name):
    sent = subprocess.run(
        [sys.executable, str(TUTORIAL / "sender.py"), queue_name],
        capture_output=True,
        timeout=30,
        env=manage_env(),
    )
    assert sent.returncode == 0, sent.stderr
    r = manage("runconsumer", queue_name, "--max-messages", "1")
    assert r.returncode == 0, r.stderr
    assert b" [x] Received b'Hello World!'" in r.stdout
    (receipt,) = receipts(queue_name)
    assert receipt.outcome == "acked"
    assert receipt.message_id == ""  # the tutorial sets no message_id


def test_send_to_tutorial_receiver(manage, queue_name):
    body = b"Hello World! \xff\x00 bytes"
    r = manage("send", queue_name, "-", input=body)
    assert r.returncode == 0, r.stderr
    receiver = subprocess.Popen(
        [sys.executable, str(TUTORIAL / "receiver.py"), queue_name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=manage_env(),
    )
    try:
        line = b""
        deadline = time.monotonic() + 30
        while b"delivery_mode=" not in line and time.monotonic() < deadline:
            line = receiver.stdout.readline()
    finally:
        receiver.kill()
        receiver.communicate(timeout=10)
    assert b"delivery_mode=2" in line
    assert line.strip().endswith(f"body_hex={body.hex()}".encode())


# --------------------------------------------------------------------------- prefetch


def test_prefetch_is_what_the_broker_enforces(spawn, queue_name):
    for i in range(20):
        publish(queue_name, f"m{i}")
    proc = spawn(
        "runconsumer",
        queue_name,
        "--prefetch",
        "7",
        "--handler",
        "tests.support.handlers.slow",
        env={"MESSAGING_TEST_SLEEP": "60"},
    )
    # The handler is stuck on the first message; the broker hands out exactly 7.
    assert wait_for(lambda: queue_depth(queue_name) == 13)
    time.sleep(0.5)
    assert queue_depth(queue_name) == 13
    if shutil.which("rabbitmqctl"):
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_consumers", "queue_name", "prefetch_count"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        rows = [line.split("\t") for line in out.splitlines()]
        assert [queue_name, "7"] in [[c.strip() for c in row] for row in rows]
    proc.kill()


# --------------------------------------------------------------------------- signals, crashes


def _start_slow(spawn, queue_name, tmp_path, sleep: float):
    marker = tmp_path / "inside"
    proc = spawn(
        "runconsumer",
        queue_name,
        "--handler",
        "tests.support.handlers.slow",
        env={"MESSAGING_TEST_MARKER": str(marker), "MESSAGING_TEST_SLEEP": str(sleep)},
    )
    wait_for(marker.exists, timeout=30)
    return proc


def test_sigkill_mid_handler_loses_nothing(spawn, manage, queue_name, tmp_path):
    message = publish(queue_name, b"precious")
    proc = _start_slow(spawn, queue_name, tmp_path, sleep=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not Receipt.objects.filter(outcome="acked").exists()
    assert wait_for(lambda: queue_depth(queue_name) == 1)  # back in the queue
    r = manage(
        "runconsumer", queue_name, "--max-messages", "1", "--handler", "tests.support.handlers.ok"
    )
    assert r.returncode == 0, r.stderr
    (receipt,) = receipts(queue_name)
    assert receipt.message == message and receipt.redelivered and receipt.outcome == "acked"


def test_sigterm_finishes_message_in_hand_and_exits_zero(spawn, queue_name, tmp_path):
    publish(queue_name, b"finish me")
    publish(queue_name, b"leave me")
    proc = _start_slow(spawn, queue_name, tmp_path, sleep=2)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 2 + 2 + 1  # handler's remaining time + 2 s (+ slack)
    (receipt,) = receipts(queue_name)
    assert receipt.outcome == "acked"
    assert (tmp_path / "inside").read_bytes() == b"finish me"
    assert wait_for(lambda: queue_depth(queue_name) == 1)  # the second one is still there


def test_second_signal_exits_at_once(spawn, queue_name, tmp_path):
    publish(queue_name, b"slow")
    proc = _start_slow(spawn, queue_name, tmp_path, sleep=60)
    proc.send_signal(signal.SIGTERM)
    time.sleep(1.3)  # within a second it would be the same request (see shutdown.py)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert proc.returncode != 0
    assert not Receipt.objects.exists()
    assert wait_for(lambda: queue_depth(queue_name) == 1)


# --------------------------------------------------------------------------- effectively once


def test_redelivery_after_commit_is_a_duplicate_not_a_second_run(
    spawn, manage, queue_name, tmp_path
):
    message = publish(queue_name, b"once")
    # The state a consumer killed between commit and ack leaves behind: an acked receipt
    # and the handler's work committed, the message still on the broker.
    Receipt.objects.create(
        message_id=message.message_id,
        queue_name=queue_name,
        outcome="acked",
        received_at=message.created_at,
        finished_at=message.created_at,
    )
    Message.objects.create(exchange="handled", routing_key=message.message_id)
    # Make the broker flag it redelivered: a consumer takes it and dies.
    proc = _start_slow(spawn, queue_name, tmp_path, sleep=60)
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: queue_depth(queue_name) == 1)
    r = manage(
        "runconsumer",
        queue_name,
        "--max-messages",
        "1",
        "--handler",
        "tests.support.handlers.record",
    )
    assert r.returncode == 0, r.stderr
    outcomes = [x.outcome for x in receipts(queue_name)]
    assert outcomes == ["acked", "duplicate"]
    assert handled(message.message_id) == 1  # the handler did not run again
    assert queue_depth(queue_name) == 0


def test_same_message_id_published_twice_is_handled_once(manage, queue_name):
    # A producer that retried after a lost confirm: same message_id twice, neither
    # flagged redelivered — the unique constraint catches the second.
    mid = str(uuid.uuid4())
    publish_raw(queue_name, b"one", message_id=mid)
    publish_raw(queue_name, b"one", message_id=mid)
    r = manage(
        "runconsumer",
        queue_name,
        "--max-messages",
        "2",
        "--handler",
        "tests.support.handlers.record",
    )
    assert r.returncode == 0, r.stderr
    assert [x.outcome for x in receipts(queue_name)] == ["acked", "duplicate"]
    assert handled(mid) == 1
    assert queue_depth(queue_name) == 0


# --------------------------------------------------------------------------- engine in-process


@pytest.mark.django_db(transaction=True)
def test_long_handler_keeps_connection_alive_past_heartbeat(queue_name, settings):
    """The handler runs off the I/O thread: a handler 4× the heartbeat interval finishes
    and acks on the same connection, without a reconnect."""
    from messaging.consumer import Consumer

    url = settings.MESSAGING["BROKER_URL"]
    settings.MESSAGING = {**settings.MESSAGING, "BROKER_URL": url, "HEARTBEAT": 1}
    publish(queue_name, b"long")
    calls = []

    def handler(delivery):
        time.sleep(4)
        calls.append(delivery.body)

    consumer = Consumer([queue_name], {queue_name: handler}, max_messages=1)
    stats = consumer.run()
    assert calls == [b"long"]
    assert stats.acked == 1 and stats.reconnects == 0
    assert queue_depth(queue_name) == 0
    assert receipts(queue_name)[0].outcome == "acked"


@pytest.mark.django_db(transaction=True)
def test_reconnects_after_broker_closes_the_connection(queue_name):
    """Connection forced closed from the broker side mid-stream: the engine reconnects,
    re-declares, and finishes; every message has one acked receipt."""
    from messaging.consumer import Consumer

    if not shutil.which("rabbitmqctl"):
        pytest.skip("needs rabbitmqctl to close connections from the broker side")
    ids = [publish(queue_name, f"m{i}").message_id for i in range(20)]
    seen = []

    def handler(delivery):
        seen.append(delivery.message_id)
        if len(seen) == 5:
            assert close_broker_connections(name) == 1
            time.sleep(0.5)

    name = f"reconnect-{uuid.uuid4().hex[:8]}"
    consumer = Consumer([queue_name], {queue_name: handler}, idle_timeout=5, name=name)
    stats = consumer.run()
    assert stats.reconnects >= 1
    acked = Receipt.objects.acked().filter(queue_name=queue_name)
    assert sorted(acked.values_list("message_id", flat=True)) == sorted(ids)
    assert queue_depth(queue_name) == 0


def test_consumer_env_uses_test_database(transactional_db):
    assert "test" in manage_env()["DATABASE_URL"]
    assert os.path.exists(ROOT / "manage.py")


def test_declaration_mismatch_stops_with_a_clear_error_instead_of_looping(manage, queue_name):
    with broker.connection() as conn:
        conn.channel().queue_declare(queue_name, durable=False)
    Queue.objects.create(name=queue_name, durable=True)
    started = time.monotonic()
    r = manage("runconsumer", queue_name, timeout=30)
    assert r.returncode != 0
    err = r.stderr.decode().strip().splitlines()[-1]
    assert "durable" in err and "PRECONDITION_FAILED" in err
    assert time.monotonic() - started < 15
