"""Log records carry the documented ``extra`` fields; ``-v 2`` shows connections with
the broker's address and never its password."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from django.test import override_settings

from messaging import conf, publish
from messaging.consumer import Consumer
from messaging.publishing import get_queue

pytestmark = pytest.mark.django_db(transaction=True)


def test_failure_records_carry_the_fields(queue_name, caplog):
    queue = get_queue(queue_name)
    message = publish(queue, b"x")

    def handler(delivery):
        raise RuntimeError("boom")

    caplog.set_level(logging.INFO, logger="messaging")
    with override_settings(MESSAGING={**conf.user_settings(), "MAX_ATTEMPTS": 1}):
        Consumer([queue], {queue_name: handler}, name="c-logs", max_messages=1).run()
    failed = [r for r in caplog.records if "failed on message" in r.getMessage()]
    dead = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert failed and dead
    assert (failed[0].message_id, failed[0].queue, failed[0].consumer, failed[0].attempt) == (
        message.message_id,
        queue_name,
        "c-logs",
        1,
    )
    assert (dead[0].outcome, dead[0].attempt) == ("dead_lettered", 1)
    connected = [r for r in caplog.records if r.getMessage().startswith("connected to broker")]
    assert connected and connected[0].role == "consumer"
    host = urlsplit(conf.broker_urls()[0]).hostname
    assert connected[0].broker.startswith(f"{host}:")


def test_verbose_runconsumer_shows_the_broker_address_not_the_password(manage, queue_name):
    get_queue(queue_name)
    url = conf.broker_urls()[0]
    r = manage("runconsumer", queue_name, "-v", "2", "--idle-timeout", "1")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    parts = urlsplit(url)
    assert f"connected to broker {parts.hostname}:{parts.port}/%2F (consumer)" in err
    assert "guest:guest" not in err and ":guest@" not in err
