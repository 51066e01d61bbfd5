"""Find (or start) the RabbitMQ and database the tests run against.

Broker: ``MESSAGING_BROKER_URL`` if set; else ``localhost:5672`` if it answers; else a
RabbitMQ started with testcontainers when a Docker engine answers; else every test that
needs it fails with one line saying what to do. It is looked for only when such a test
runs (the ``live_broker`` fixture), so the unit tier (marker ``unit``) needs none.

The database follows the same pattern: ``DATABASE_URL`` if set; else SQLite, or with
``MESSAGING_TEST_DB=postgres`` a local PostgreSQL on ``127.0.0.1:5432`` or one started
with testcontainers.

Whatever is found is written back to the environment so subprocesses (``manage.py
runconsumer`` in the fault tests) use the same services.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from project.services import answers, docker_available, start_postgres, start_rabbitmq

BASE_DIR = Path(__file__).resolve().parents[2]
LOCAL_BROKER = "amqp://guest:guest@localhost:5672/%2F"
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
# BROKER_URL until a test that needs the broker has found one: a closed port, so a unit
# test that connects by mistake fails at once.
NO_BROKER_YET = "amqp://no-broker-yet:no-broker-yet@127.0.0.1:1/%2F"


def _fail(what: str) -> None:
    raise SystemExit(f"messaging tests: {what}")


def known_broker_url() -> str:
    """``MESSAGING_BROKER_URL`` if set, else :data:`NO_BROKER_YET`; never looks for one.

    tests/settings.py uses this at import, so the unit tier needs no broker; the
    ``live_broker`` fixture (tests/conftest.py) calls :func:`broker_url` for the rest."""
    return os.environ.get("MESSAGING_BROKER_URL") or NO_BROKER_YET


def broker_url() -> str:
    url = os.environ.get("MESSAGING_BROKER_URL")
    if url:
        return url
    if answers("localhost", 5672):
        url = LOCAL_BROKER
    elif docker_available():
        url = start_rabbitmq()
        sys.stderr.write("messaging tests: started RabbitMQ with testcontainers\n")
    else:
        _fail(
            "no RabbitMQ: set MESSAGING_BROKER_URL, start one on localhost:5672 "
            "(e.g. `rabbitmq-server -detached`), or install Docker so testcontainers can."
        )
    os.environ["MESSAGING_BROKER_URL"] = url
    return url


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    if os.environ.get("MESSAGING_TEST_DB", "sqlite") != "postgres":
        return f"sqlite:///{BASE_DIR / 'tests' / '.test-db.sqlite3'}"
    if answers("127.0.0.1", 5432):
        url = os.environ.get("MESSAGING_TEST_POSTGRES_URL", LOCAL_POSTGRES)
    elif docker_available():
        url = start_postgres()
        sys.stderr.write("messaging tests: started PostgreSQL with testcontainers\n")
    else:
        _fail(
            "MESSAGING_TEST_DB=postgres but no PostgreSQL: set DATABASE_URL, start one on "
            "127.0.0.1:5432, or install Docker so testcontainers can."
        )
    os.environ["DATABASE_URL"] = url
    return url
