"""Cluster configuration on one real broker: dead-letter queues of their queue's type
(and an older classic one kept as it is), ``DEFAULT_QUEUE_TYPE``, the classic-on-a-
cluster notices, the relay retrying rows an outage failed, ``runconsumer`` waiting for
the broker (and ``--connect-timeout``), and the demo settings' comma-separated URLs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pika.exceptions as pe
import pytest
from django.conf import settings
from django.contrib import messages
from django.test import Client, override_settings

from messaging import broker
from messaging.models import Message, Queue, Receipt, dead_letter_queue_name
from messaging.publishing import build_message
from messaging.publishing.relay import relay_once
from tests.support.admin import shown_messages, url
from tests.support.environment import ROOT
from tests.support.exactly_once import publish_many
from tests.support.ports import closed_port
from tests.support.rabbitmq import queue_depth

pytestmark = pytest.mark.django_db(transaction=True)


def is_quorum(name: str) -> bool:
    """True when ``name`` exists as a quorum queue (a quorum re-declaration is refused
    by a classic queue: PRECONDITION_FAILED)."""
    with broker.connection() as conn:
        try:
            conn.channel().queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
        except pe.ChannelClosedByBroker as exc:
            assert exc.reply_code == 406, exc
            return False
    return True


def env(**messaging: Any) -> dict[str, str]:
    return {"MESSAGING_TEST_SETTINGS": json.dumps(messaging)}


# --------------------------------------------------------------------------- DLQ types


def test_a_quorum_queue_gets_a_quorum_dead_letter_queue(queue_name: str) -> None:
    row = Queue.objects.create(name=queue_name, queue_type=Queue.QueueType.QUORUM)
    result = broker.declare_queues([row])
    assert result.declared == [queue_name], result.failed
    assert is_quorum(queue_name)
    assert is_quorum(dead_letter_queue_name(queue_name))


def test_a_classic_queue_keeps_a_classic_dead_letter_queue(queue_name: str) -> None:
    row = Queue.objects.create(name=queue_name)
    assert broker.declare_queues([row]).declared == [queue_name]
    assert not is_quorum(dead_letter_queue_name(queue_name))


def test_the_setting_chooses_the_dead_letter_queue_type(queue_name: str) -> None:
    row = Queue.objects.create(name=queue_name, queue_type=Queue.QueueType.QUORUM)
    with override_settings(MESSAGING={**settings.MESSAGING, "DEAD_LETTER_QUEUE_TYPE": "classic"}):
        assert broker.declare_queues([row]).declared == [queue_name]
    assert is_quorum(queue_name)
    assert not is_quorum(dead_letter_queue_name(queue_name))


def test_an_existing_classic_dead_letter_queue_keeps_working(manage: Any, queue_name: str) -> None:
    dlq = dead_letter_queue_name(queue_name)
    with broker.connection() as conn:  # as older versions declared it
        conn.channel().queue_declare(dlq, durable=True)
    row = Queue.objects.create(name=queue_name, queue_type=Queue.QueueType.QUORUM)
    result = broker.declare_queues([row])
    assert result.declared == [queue_name], result.failed
    (poison,) = publish_many(row, 1, prefix="poison", headers={"poison": True})
    r = manage(
        "runconsumer",
        queue_name,
        "--handler",
        "tests.support.handlers.record_unless_poison",
        "--idle-timeout",
        "2",
        "-v",
        "0",
        env=env(MAX_ATTEMPTS=1),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert Receipt.objects.filter(message=poison, outcome="dead_lettered").count() == 1
    assert queue_depth(dlq) == 1
    assert not is_quorum(dlq)  # still the classic one: nothing redeclared it


# --------------------------------------------------------------------------- default type


def test_send_to_a_new_queue_uses_the_default_queue_type(manage: Any, queue_name: str) -> None:
    r = manage("send", queue_name, "hello", env=env(DEFAULT_QUEUE_TYPE="quorum"))
    assert r.returncode == 0, r.stderr.decode()
    assert Queue.objects.get(name=queue_name).queue_type == "quorum"
    assert is_quorum(queue_name)
    assert is_quorum(dead_letter_queue_name(queue_name))


def test_publish_to_a_new_queue_name_uses_the_default_queue_type(queue_name: str) -> None:
    from messaging import publish

    with override_settings(MESSAGING={**settings.MESSAGING, "DEFAULT_QUEUE_TYPE": "quorum"}):
        message = publish(queue_name, b"x")
    assert message.status == Message.Status.PUBLISHED
    assert message.queue.queue_type == "quorum"
    assert is_quorum(queue_name)


# --------------------------------------------------------------------------- notices


def test_declarequeues_says_when_a_classic_queue_sits_on_a_cluster(
    manage: Any, queue_name: str
) -> None:
    Queue.objects.create(name=queue_name)
    Queue.objects.create(name=f"{queue_name}.q", queue_type=Queue.QueueType.QUORUM)
    urls = [settings.MESSAGING["BROKER_URL"]] * 2  # two URLs: a cluster
    try:
        r = manage("declarequeues", queue_name, f"{queue_name}.q", env=env(BROKER_URL=urls))
        assert r.returncode == 0, r.stderr.decode()
        err = r.stderr.decode()
        assert f"{queue_name}: classic queue on a cluster" in err
        assert f"{queue_name}.q: classic" not in err
        single = manage("declarequeues", queue_name)
        assert b"classic queue on a cluster" not in single.stderr
    finally:  # the queue_name fixture removes queue_name's queues, not this one's
        with broker.connection() as conn:
            for name in (f"{queue_name}.q", dead_letter_queue_name(f"{queue_name}.q")):
                conn.channel().queue_delete(name)


def test_the_queue_admin_says_when_a_classic_queue_sits_on_a_cluster(
    admin_client: Client, queue_name: str
) -> None:
    Queue.objects.create(name=queue_name)
    urls = [settings.MESSAGING["BROKER_URL"]] * 2
    with override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": urls}):
        response = admin_client.get(url("queue_changelist"))
    warnings = [text for level, text in shown_messages(response) if level == messages.WARNING]
    assert any(queue_name in text and "classic queue on a cluster" in text for text in warnings)
    response = admin_client.get(url("queue_changelist"))
    assert not any("classic queue on a cluster" in text for _, text in shown_messages(response))


# --------------------------------------------------------------------------- relay


def test_the_relay_retries_rows_an_outage_failed_and_leaves_real_failures(
    queue_name: str,
) -> None:
    row = Queue.objects.create(name=queue_name)
    outage = build_message(row, b"outage")
    outage.status, outage.error_class = Message.Status.FAILED, "QueueUnavailable"
    outage.last_error = "broker says not found: NOT_FOUND - home node ... is down or inaccessible"
    unroutable = build_message(row, b"mine")
    unroutable.status, unroutable.error_class = Message.Status.FAILED, "Unroutable"
    Message.objects.bulk_create([outage, unroutable])
    result = relay_once()
    assert result.published == 1, result
    outage.refresh_from_db()
    unroutable.refresh_from_db()
    assert (outage.status, outage.error_class, outage.last_error) == ("published", "", "")
    assert unroutable.status == "failed"
    assert queue_depth(queue_name) == 1


# --------------------------------------------------------------------------- runconsumer


def runconsumer(
    queue: str, *args: str, broker_url: str, stderr: Any = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    from tests.support.environment import manage_env

    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runconsumer", queue, *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=manage_env(**env(BROKER_URL=broker_url, RECONNECT_DELAY=0.1)),
        cwd=ROOT,
    )


def test_runconsumer_waits_for_a_broker_that_is_not_there_yet(
    queue_name: str, tmp_path: Path
) -> None:
    """It keeps trying (and saying so) instead of exiting; SIGTERM stops it with 0."""
    Queue.objects.create(name=queue_name)
    closed = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        proc = runconsumer(queue_name, "-v", "2", broker_url=closed, stderr=stderr)
    try:
        deadline = time.monotonic() + 60  # Django's start-up on a busy machine included
        while "broker not ready (try 2)" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    err = log.read_text()
    assert proc.returncode == 0, err
    assert "broker not ready (try 2)" in err


def test_runconsumer_connect_timeout_gives_up_in_one_line(queue_name: str) -> None:
    Queue.objects.create(name=queue_name)
    proc = runconsumer(
        queue_name,
        "--connect-timeout",
        "1",
        "-v",
        "0",
        broker_url=f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F",
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "gave up after" in lines[0] and "connect-timeout" in lines[0]
    assert "Traceback" not in err.decode()


# --------------------------------------------------------------------------- demo settings


def test_demo_settings_take_several_comma_separated_urls() -> None:
    urls = "amqp://u:p@node1:5672/%2F, amqp://u:p@node2:5672/%2F,amqp://u:p@node3:5672/%2F"
    code = "import json, project.settings as s; print(json.dumps(s.MESSAGING['BROKER_URL']))"
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MESSAGING_BROKER_URL": urls},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == [f"amqp://u:p@node{i}:5672/%2F" for i in (1, 2, 3)]


def test_migration_0011_gives_rows_an_outage_failed_the_error_class_of_an_outage(
    queue_name: str,
) -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("messaging.migrations.0011_error_class")
    row = Queue.objects.create(name=queue_name)
    texts = {
        "down": "broker says not found: NOT_FOUND - home node 'rabbit@b' of durable queue "
        "'q' in vhost '/' is down or inaccessible",
        "unreachable": "cannot reach the broker at amqp://guest:***@b:5672/%2F: refused",
        "unroutable": "unroutable: no queue bound for exchange x routing key y",
    }
    for body, text in texts.items():
        message = build_message(row, body)
        message.status, message.last_error = Message.Status.FAILED, text
        message.save()
    migration.classify_outage_failures(apps, None)
    classes = dict(Message.objects.values_list("body", "error_class"))
    assert {bytes(k).decode(): v for k, v in classes.items()} == {
        "down": "QueueUnavailable",
        "unreachable": "BrokerUnavailable",
        "unroutable": "",
    }
    assert relay_once().published == 2  # the two an outage failed; the other stays failed
