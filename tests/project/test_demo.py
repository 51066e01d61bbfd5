"""The README's `make demo` path and the way tests/demo find their services."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from project import demo
from tests.support import services
from tests.support.environment import ROOT


def test_demo_runs_the_tutorial_end_to_end(tmp_path):
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    r = subprocess.run(
        [sys.executable, "-m", "project.demo"],
        capture_output=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert " [x] Sent b'Hello World!' to q1" in out
    assert " [x] Received b'Hello World!'" in out
    # The outbox's message goes out through the relay, and the demo says to run one.
    assert " [x] Relayed: 1 published" in out
    assert " [x] Received b'Hello from the outbox!'" in out
    assert "python manage.py relay" in out.split("==> to use the admin console", 1)[1]
    receipts = out.split("==> receipts", 1)[1].splitlines()
    assert receipts[1].split()[:1] == ["received"]
    assert any(" q1 " in line and " acked " in line for line in receipts)


def test_demo_without_broker_or_docker_says_how_in_one_line(monkeypatch):
    monkeypatch.setenv("MESSAGING_BROKER_URL", "amqp://guest:guest@127.0.0.1:1/%2F")
    monkeypatch.setattr(demo, "docker_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        demo.ensure_broker()
    message = str(exc.value)
    assert "\n" not in message and "no RabbitMQ" in message


def test_tests_without_broker_or_docker_fail_in_one_line(monkeypatch):
    monkeypatch.delenv("MESSAGING_BROKER_URL", raising=False)
    monkeypatch.setattr(services, "answers", lambda host, port, timeout=1.0: False)
    monkeypatch.setattr(services, "docker_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        services.broker_url()
    assert "\n" not in str(exc.value) and "no RabbitMQ" in str(exc.value)


def test_tests_without_postgres_or_docker_fail_in_one_line(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MESSAGING_TEST_DB", "postgres")
    monkeypatch.setattr(services, "answers", lambda host, port, timeout=1.0: False)
    monkeypatch.setattr(services, "docker_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        services.database_url()
    assert "\n" not in str(exc.value) and "no PostgreSQL" in str(exc.value)


def test_explicit_urls_win(monkeypatch):
    monkeypatch.setenv("MESSAGING_BROKER_URL", "amqp://u:p@broker:5672/%2F")
    monkeypatch.setenv("DATABASE_URL", "postgres://x@db/y")
    assert services.broker_url() == "amqp://u:p@broker:5672/%2F"
    assert services.database_url() == "postgres://x@db/y"
