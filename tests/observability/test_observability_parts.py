"""The pure parts of messaging.observability: liveness, log fields, addresses, the
gauge families, reports, header merging, the hooks' counters (no broker, no database)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pika
import pytest
from prometheus_client import REGISTRY

from messaging import observability
from messaging.observability import health, logs, tracing
from messaging.observability.gauges import Snapshot, families

pytestmark = pytest.mark.unit


def _delivery(queue="q", message_id="m-1", headers=None):
    return SimpleNamespace(
        queue=queue,
        message_id=message_id,
        routing_key=queue,
        properties=pika.BasicProperties(message_id=message_id, headers=headers),
    )


def _value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --------------------------------------------------------------------------- liveness

LIMITS = {"loop": 30.0, "busy": 100.0, "io": 90.0}


def test_liveness_needs_a_beat_from_each_part():
    alive = health.Liveness()
    assert alive.stale(LIMITS, now=1000.0) == ["loop", "io"]
    alive.beats = {"loop": 990.0, "io": 995.0}
    assert alive.stale(LIMITS, now=1000.0) == []
    assert alive.stale(LIMITS, now=1021.0) == ["loop"]
    assert alive.stale(LIMITS, now=1086.0) == ["loop", "io"]


def test_a_batch_in_hand_may_run_for_the_busy_limit():
    alive = health.Liveness()
    alive.beats = {"loop": 0.0, "io": 199.0}
    alive.busy(150.0)
    assert alive.stale(LIMITS, now=200.0) == []  # 50 s into a handler: fine
    assert alive.stale(LIMITS, now=251.0) == ["loop"]  # past the busy limit: stuck
    alive.busy(None)
    assert alive.stale(LIMITS, now=200.0) == ["loop"]  # idle and silent since 0


def test_health_file_is_touched_only_while_alive(tmp_path):
    alive = health.Liveness()
    path = tmp_path / "alive"
    file = health.HealthFile(path, liveness=alive, limits=LIMITS)
    assert file.touch_if_alive() is False and not path.exists()
    alive.beat("loop")
    alive.beat("io")
    assert file.touch_if_alive() is True and path.exists()


def test_liveness_limits_follow_the_settings(settings):
    settings.MESSAGING = {"BROKER_CONSUMER_TIMEOUT": 600, "RECONNECT_MAX_DELAY": 10}
    assert health.liveness_limits() == {"loop": 30.0, "busy": 600.0, "io": 70.0}


# --------------------------------------------------------------------------- reports


def test_report_lines_and_json():
    report = health.Report(
        [health.Check("database", True, "sqlite"), health.Check("broker", False, "down")]
    )
    assert not report.ok
    assert [c.line() for c in report.failures()] == ["broker: down"]
    assert report.as_dict()["checks"][1] == {"name": "broker", "ok": False, "detail": "down"}


def test_error_lines_are_one_line_and_redacted():
    exc = RuntimeError("cannot reach amqp://u:secret@host:5672/%2F\nsecond line")
    assert health._first_line(exc) == "cannot reach amqp://u:***@host:5672/%2F"


# --------------------------------------------------------------------------- logs


def test_broker_address_never_shows_the_user_or_password():
    assert logs.broker_address("amqp://u:secret@rabbit-1:5673/%2F") == "rabbit-1:5673/%2F"
    assert logs.broker_address("amqps://u:p@mq.example.com/prod") == "mq.example.com:5671/prod"


def test_log_fields_of_a_delivery():
    fields = logs.log_fields(_delivery(), consumer="c1", outcome="requeued", attempt=2)
    assert fields == {
        "message_id": "m-1",
        "queue": "q",
        "consumer": "c1",
        "outcome": "requeued",
        "attempt": 2,
    }
    assert set(fields) <= set(logs.FIELDS)
    assert logs.log_fields(message_id="x") == {"message_id": "x"}


def test_json_formatter_emits_the_extra_fields():
    record = logging.makeLogRecord(
        {"name": "messaging.consumer", "levelname": "WARNING", "msg": "failed %s", "args": (1,)}
    )
    record.__dict__.update(logs.log_fields(_delivery(), attempt=3))
    data = json.loads(logs.JsonFormatter().format(record))
    assert data["message"] == "failed 1" and data["logger"] == "messaging.consumer"
    assert (data["message_id"], data["queue"], data["attempt"]) == ("m-1", "q", 3)


def test_connection_roles_from_their_names():
    assert observability._role("runconsumer host:1") == "consumer"
    assert observability._role("messaging-relay@host:2") == "relay"
    assert observability._role("messaging@host:3") == "publisher"
    assert observability._role(None) == "publisher"


# --------------------------------------------------------------------------- gauges


def test_gauge_families_from_a_snapshot():
    snap = Snapshot(pending={"a": 3}, oldest={"a": 12.5}, consumers={"running": 2, "lost": 1})
    by_name = {f.name: f for f in families(snap)}
    assert by_name["messaging_outbox_pending"].samples[0].value == 3
    assert by_name["messaging_outbox_oldest_pending_seconds"].samples[0].labels == {"queue": "a"}
    states = {s.labels["state"]: s.value for s in by_name["messaging_consumers"].samples}
    assert states == {"lost": 1, "running": 2}
    assert {s.labels["source"] for s in by_name["messaging_gauge_errors"].samples} == {
        "broker",
        "database",
    }


# --------------------------------------------------------------------------- hooks


def test_receipts_count_per_queue_and_outcome():
    before = _value("messaging_deliveries_total", queue="unit-q", outcome="requeued")
    observability.receipts([_delivery("unit-q"), _delivery("unit-q")], "requeued")
    after = _value("messaging_deliveries_total", queue="unit-q", outcome="requeued")
    assert after - before == 2


def test_end_to_end_is_measured_from_the_sent_at_header():
    import time

    name = "messaging_end_to_end_seconds_count"
    before = _value(name, queue="unit-e2e")
    stamped = _delivery(
        "unit-e2e", headers={observability.SENT_AT_HEADER: int(time.time() * 1000) - 2000}
    )
    observability.receipts([stamped, _delivery("unit-e2e")], "acked")
    assert _value(name, queue="unit-e2e") - before == 1  # only the stamped one
    assert _value("messaging_end_to_end_seconds_sum", queue="unit-e2e") >= 2


def test_published_outcomes():
    from messaging.exceptions import BrokerUnavailable, Unroutable

    row = SimpleNamespace(destination=("", "unit-p"), created_at=None)
    before = {o: _value("messaging_published_total", destination="unit-p", outcome=o)
              for o in ("published", "pending", "failed")}  # fmt: skip
    observability.published(
        [row, row, row], [None, BrokerUnavailable("down"), Unroutable("no route")]
    )
    for outcome in ("published", "pending", "failed"):
        now = _value("messaging_published_total", destination="unit-p", outcome=outcome)
        assert now - before[outcome] == 1


def test_instrumented_handler_times_and_passes_results_through():
    calls = []
    wrapped = observability.instrument_handlers({"unit-h": calls.append})["unit-h"]
    before = _value("messaging_handler_seconds_count", queue="unit-h")
    delivery = _delivery("unit-h")
    assert wrapped(delivery) is None and calls == [delivery]
    assert _value("messaging_handler_seconds_count", queue="unit-h") - before == 1

    def boom(delivery):
        raise ValueError("x")

    failing = observability.instrument_handlers({"unit-h": boom})["unit-h"]
    with pytest.raises(ValueError):
        failing(delivery)
    assert _value("messaging_handler_seconds_count", queue="unit-h") - before == 2


def test_outgoing_headers_carry_a_stored_trace_context(settings):
    settings.MESSAGING = {}
    row = SimpleNamespace(headers={"a": 1}, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    row.tracestate = "vendor=x"
    assert observability.outgoing_headers(row) == {
        "a": 1,
        "traceparent": row.traceparent,
        "tracestate": "vendor=x",
    }
    plain = SimpleNamespace(headers={}, traceparent="", tracestate="")
    assert observability.outgoing_headers(plain) is None
    settings.MESSAGING = {"SENT_AT_HEADER": True}
    stamped = observability.outgoing_headers(plain)
    assert set(stamped) == {observability.SENT_AT_HEADER}


def test_tracing_is_off_without_a_provider():
    assert tracing.enabled() is False
    with tracing.processing(_delivery()):
        pass


def test_the_alert_rules_use_only_metrics_the_app_exports():
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml").read_text()
    rules = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\bmessaging_[a-z_]+", rules))
    exported = {
        "messaging_deliveries_total",
        "messaging_broker_reconnects_total",
        "messaging_outbox_oldest_pending_seconds",
        "messaging_queue_messages",
        "messaging_queue_consumers",
        "messaging_dead_letter_messages",
        "messaging_consumers",
        "messaging_gauge_errors",
    }
    assert used and used <= exported
    assert {f.name for f in families(Snapshot())} >= {
        n for n in exported if not n.endswith("_total")
    }


def test_log_fields_of_a_message_row():
    row = SimpleNamespace(message_id="m-9", destination=("", "orders"))
    assert logs.log_fields(message=row, outcome="pending") == {
        "message_id": "m-9",
        "queue": "orders",
        "outcome": "pending",
    }


def test_delivery_filter_names_the_delivery_a_handler_logs_from():
    # A handler of our own on a logger of our own: what earlier tests did to the root
    # logger and to caplog's handler (Celery, dictConfig) cannot hide the records.
    records: list[logging.LogRecord] = []
    keep = logging.Handler()
    keep.emit = records.append  # type: ignore[method-assign]
    keep.addFilter(logs.DeliveryFilter())
    log = logging.getLogger("tests.unit.observability.orders")
    log.disabled, log.propagate = False, False
    log.setLevel(logging.INFO)
    log.addHandler(keep)

    def handler(delivery):
        log.warning("working")

    wrapped = observability.instrument_handlers({"unit-f": handler}, "c-7")["unit-f"]
    try:
        wrapped(_delivery("unit-f", message_id="m-5"))
        log.warning("outside")
    finally:
        log.removeHandler(keep)
    inside, outside = records
    seen = (inside.message_id, inside.queue, inside.consumer)
    assert seen == ("m-5", "unit-f", "c-7")
    assert not hasattr(outside, "message_id")
