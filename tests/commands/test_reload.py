"""``runconsumer --reload``: a changed handler module is used for the next message, the
messages in hand are finished before the restart, and nothing is lost or handled twice
across it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from messaging.models import Message
from tests.support.environment import ROOT, manage_env
from tests.support.exactly_once import check_exactly_once, publish_many
from tests.support.waiting import wait_for

HANDLER = """
from messaging.models import Message


def handle(delivery):
    Message.objects.create(
        exchange="handled", routing_key=delivery.message_id, body=b"{version}:" + delivery.body
    )
"""


def bodies(ids: list[str]) -> dict[str, bytes]:
    rows = Message.objects.filter(exchange="handled", routing_key__in=ids)
    return {r.routing_key: bytes(r.body) for r in rows}


def test_reload_uses_the_changed_handler_and_loses_nothing(transactional_db, queue_name, tmp_path):
    module = f"reload_handler_{uuid.uuid4().hex[:8]}"
    source = tmp_path / f"{module}.py"
    source.write_text(HANDLER.format(version="v1"))
    err = tmp_path / "err"
    env = manage_env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runconsumer", queue_name, "--reload",
             "--handler", f"{module}.handle"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        first = publish_many(queue_name, 5, prefix="a")
        assert wait_for(lambda: len(bodies(first)) == 5, timeout=60), err.read_text()
        assert set(bodies(first).values()) == {b"v1:a%d" % i for i in range(5)}

        time.sleep(1.1)  # a new mtime the reloader (it compares mtimes) must see
        source.write_text(HANDLER.format(version="v2"))
        changed = f"{source.name} changed"
        assert wait_for(lambda: changed in err.read_text(), timeout=30), err.read_text()
        during = publish_many(queue_name, 5, prefix="b")  # sent while it restarts
        assert wait_for(lambda: len(bodies(during)) == 5, timeout=60), err.read_text()
        later = publish_many(queue_name, 5, prefix="c")
        assert wait_for(lambda: len(bodies(later)) == 5, timeout=60), err.read_text()
        assert set(bodies(later).values()) == {b"v2:c%d" % i for i in range(5)}

        proc.send_signal(signal.SIGTERM)  # the parent passes it on to the child
        assert proc.wait(timeout=30) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    check_exactly_once(queue_name, [*first, *during, *later], context="--reload")
