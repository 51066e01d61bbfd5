"""``manage.py healthcheck`` against a healthy stack and each kind of trouble (exit
code and line), and the probe views through the test client."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from messaging import broker, conf
from messaging.models import Message, Queue
from messaging.publishing import get_queue
from tests.support.consumers import stop_and_wait, wait_running
from tests.support.outages import broker_stopped

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "guest"  # the test broker's; never in any output
CLOSED_DATABASE = "postgres://someone:s3cret-db-pw@127.0.0.1:1/nothing"


def _out(result) -> tuple[str, str]:
    return result.stdout.decode(), result.stderr.decode()


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert f":{PASSWORD}@" not in text
        assert "s3cret-db-pw" not in text


def test_healthy_stack_exits_0(manage, queue_name):
    broker.declare_queues([get_queue(queue_name)])
    r = manage("healthcheck")
    out, err = _out(r)
    assert r.returncode == 0, err
    assert out.strip().startswith("healthy (")
    assert err == ""
    report = json.loads(_out(manage("healthcheck", "--json"))[0])
    assert report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert names[:2] == ["database", "broker"] and f"queue {queue_name}" in names


@pytest.mark.broker_control
def test_stopped_broker_exits_1_with_one_line(manage):
    with broker_stopped():
        r = manage("healthcheck")
    out, err = _out(r)
    assert r.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("broker: cannot connect to amqp://guest:***@")
    _no_secret(out, err)


def test_unreachable_database_exits_1(manage):
    r = manage("healthcheck", "--json", env={"DATABASE_URL": CLOSED_DATABASE})
    out, err = _out(r)
    assert r.returncode == 1
    report = json.loads(out)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["database"]
    assert failed[0]["detail"].startswith("unreachable (")
    r = manage("healthcheck", env={"DATABASE_URL": CLOSED_DATABASE})
    lines = _out(r)[1].strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("database: unreachable")
    _no_secret(out, err, *lines)


def test_queue_without_a_live_consumer(manage, start_consumer, queue_name):
    broker.declare_queues([get_queue(queue_name)])
    r = manage("healthcheck", "--consumers", queue_name)
    assert r.returncode == 1
    assert _out(r)[1].strip() == f"consumers {queue_name}: no live consumer in the registry"
    consumer = start_consumer(queue_name)
    wait_running(consumer, lambda: manage("healthcheck", "--consumers", queue_name).returncode == 0)
    stop_and_wait(consumer)
    # MESSAGING["CONSUMERS"] is the default list.
    env = {
        "MESSAGING_TEST_SETTINGS": json.dumps(
            {"CONSUMERS": {queue_name: "tests.support.handlers.ok"}}
        )
    }
    r = manage("healthcheck", "--consumers", env=env)
    assert r.returncode == 1
    assert _out(r)[1].strip() == f"consumers {queue_name}: no live consumer in the registry"


def test_old_pending_message(manage, queue_name):
    queue = get_queue(queue_name)
    broker.declare_queues([queue])
    message = Message.objects.create(queue=queue, body=b"x")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert manage("healthcheck", "--max-pending-age", "86400").returncode == 0
    r = manage("healthcheck", "--max-pending-age", "60")
    assert r.returncode == 1
    (line,) = _out(r)[1].strip().splitlines()
    found = re.fullmatch(
        rf"pending: oldest pending message \({re.escape(queue_name)}\) is (\d+)s old \(max 60s\)",
        line,
    )
    assert found, line
    assert 7200 <= int(found.group(1)) < 7200 + 300, line  # two hours, plus the commands' time


def test_dead_letters_and_a_queue_declared_otherwise(manage, queue_name, channel):
    queue = get_queue(queue_name)
    broker.declare_queues([queue])
    channel.basic_publish("", queue.dead_letter_queue, b"dead")
    wait_for_depth = manage("healthcheck", "--max-dead-letters", "0")
    assert wait_for_depth.returncode == 1
    assert _out(wait_for_depth)[1].strip() == (
        f"dead letters {queue_name}: {queue_name}.dlq holds 1 message(s) (max 0)"
    )
    assert manage("healthcheck", "--max-dead-letters", "1").returncode == 0
    other = Queue.objects.create(name=f"{queue_name}-args", arguments={"x-max-length": 10})
    channel.queue_declare(other.name, durable=True)  # without the row's argument
    try:
        r = manage("healthcheck")
        assert r.returncode == 1
        (line,) = _out(r)[1].strip().splitlines()
        assert line.startswith(f"queue {other.name}: declared with other arguments than its row")
        Queue.objects.filter(pk=other.pk).update(name=f"{queue_name}-missing")
        r = manage("healthcheck")
        assert _out(r)[1].strip() == f"queue {queue_name}-missing: missing on the broker"
    finally:
        with broker.connection() as conn:
            conn.channel().queue_delete(other.name)


# --------------------------------------------------------------------------- probe views


def test_probe_views():
    client = Client()
    live = client.get("/messaging/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = client.get("/messaging/health/ready")
    assert ready.status_code == 200, ready.content
    assert ready.json()["status"] == "ok"
    assert [c["name"] for c in ready.json()["checks"]] == ["database", "broker"]
    assert client.post("/messaging/health/live").status_code == 405


def test_ready_is_503_when_the_broker_is_unreachable():
    url = "amqp://guest:guest@127.0.0.1:1/%2F"
    with override_settings(MESSAGING={**conf.user_settings(), "BROKER_URL": url}):
        ready = Client().get("/messaging/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable" and body["ok"] is False
    broker_check = body["checks"][1]
    assert broker_check["ok"] is False
    assert "guest:***@127.0.0.1:1" in broker_check["detail"]
    _no_secret(ready.content.decode())


def test_metrics_view_shows_the_outbox_backlog(queue_name):
    from messaging.observability.gauges import GaugeCollector
    from tests.support.metrics import samples

    queue = get_queue(queue_name)
    Message.objects.create(queue=queue, body=b"1")
    old = Message.objects.create(queue=queue, body=b"2")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=300))
    GaugeCollector.shared().clear()
    response = Client().get("/messaging/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert samples(text, "messaging_outbox_pending")[(("queue", queue_name),)] == 2
    oldest = samples(text, "messaging_outbox_oldest_pending_seconds")[(("queue", queue_name),)]
    assert 300 <= oldest < 400
    assert samples(text, "messaging_gauge_errors")[(("source", "broker"),)] == 0
