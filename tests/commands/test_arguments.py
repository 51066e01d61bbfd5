"""Out-of-range command arguments are argparse errors (exit 2,
one error line, no traceback), and runconsumer's counters tell the truth — in its
summary and in its registry row, after SIGTERM too."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys

import pytest
from django.core.management import call_command

from messaging import publish
from messaging.models import Consumer as ConsumerRow
from messaging.models import Queue, Receipt
from tests.support.environment import ROOT, manage_env
from tests.support.waiting import wait_for

# --------------------------------------------------------------------------- argparse bounds


def run_manage(*args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` without a database: argparse refuses before any query."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=manage_env(),
        cwd=ROOT,
    )


BOUNDS = [
    (["runconsumer", "q", "--prefetch", "70000"], "--prefetch: must be between 1 and 65535"),
    (["runconsumer", "q", "--prefetch", "0"], "--prefetch: must be between 1 and 65535"),
    (["runconsumer", "q", "--batch-size", "65536"], "--batch-size: must be between 1 and 65535"),
    (["runconsumer", "q", "--max-messages", "0"], "--max-messages: must be at least 1"),
    (["runconsumer", "q", "--idle-timeout", "-1"], "--idle-timeout: must be a finite number"),
    (["runconsumer", "q", "--idle-timeout", "nan"], "--idle-timeout: must be a finite number"),
    (["runconsumer", "q", "--name", "a\nb"], "--name: no control characters"),
    (["runconsumer", "q", "--name", "n" * 256], "--name: at most 255 characters"),
    (["purgemessages", "--older-than", "99999999999d"], "age '99999999999d' is too large"),
    (["purgemessages", "--older-than", "36501d"], "at most 36500d"),
    (["purgemessages", "--older-than", "soon"], "cannot read 'soon' as an age"),
    (["purgemessages", "--older-than", "1d", "--batch-size", "0"], "between 1 and 10000"),
    (["purgemessages", "--older-than", "1d", "--batch-size", "99999"], "between 1 and 10000"),
    (["receipts", "--limit", "-1"], "--limit: must be between 0 and 1000000"),
    (["receipts", "--limit", "many"], "--limit: expected a whole number, got 'many'"),
    (["send", "q", "body", "--count", "0"], "--count: must be at least 1"),
    (["send", "q", "body", "--count", "-5"], "--count: must be at least 1"),
    (["replaydlq", "q", "--limit", "0"], "--limit: must be at least 1"),
]


@pytest.mark.parametrize("args, error", BOUNDS, ids=[" ".join(a)[:40] for a, _ in BOUNDS])
def test_out_of_range_arguments_are_argparse_errors(args, error):
    r = run_manage(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and r.stderr.splitlines()[-1] == errors[0], r.stderr
    assert error in errors[0]


@pytest.mark.django_db(transaction=True)
def test_the_bounds_themselves_are_accepted(queue_name):
    Queue.objects.create(name=queue_name)
    call_command(
        "runconsumer", queue_name, "--prefetch", "65535", "--batch-size", "65535",
        "--idle-timeout", "0.3", "--name", "n" * 255, "-v", "0",
    )  # fmt: skip
    out = io.StringIO()
    call_command("purgemessages", "--older-than", "36500d", "--batch-size", "10000", stdout=out)
    assert "Deleted 0 message(s)" in out.getvalue()
    call_command("purgemessages", older_than="36500d", stdout=io.StringIO())  # kwargs too
    out = io.StringIO()
    call_command("receipts", "--limit", "0", stdout=out)
    assert "(no receipts)" in out.getvalue()


# --------------------------------------------------------------------------- counters


def summary(stderr: bytes) -> str:
    (line,) = [x for x in stderr.decode().splitlines() if "Stopped:" in x]
    return line


@pytest.mark.parametrize(
    "handler, expected",
    [
        ("reject", "2 failed (2 rejected, 0 dead-lettered)"),
        ("fail", "2 failed (0 rejected, 2 dead-lettered)"),
    ],
)
def test_summary_counts_rejected_and_dead_lettered_apart(manage, queue_name, handler, expected):
    Queue.objects.create(name=queue_name, max_attempts=1)
    publish(queue_name, b"one")
    publish(queue_name, b"two")
    r = manage(
        "runconsumer", queue_name, "--handler", f"tests.support.handlers.{handler}",
        "--max-messages", "2", "--idle-timeout", "10",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert summary(r.stderr) == f" [*] Stopped: 2 handled, 0 acked, 0 duplicate, {expected}"
    outcome = "rejected" if handler == "reject" else "dead_lettered"
    assert list(Receipt.objects.values_list("outcome", flat=True)) == [outcome, outcome]


def start_consumer(spawn, queue_name: str, name: str, heartbeat: float):
    return spawn(
        "runconsumer", queue_name, "--handler", "tests.support.handlers.ok", "--name", name,
        env={"MESSAGING_TEST_SETTINGS": json.dumps({"CONSUMER_HEARTBEAT_INTERVAL": heartbeat})},
    )  # fmt: skip


def publish_and_wait(queue_name: str, count: int) -> None:
    for n in range(count):
        publish(queue_name, f"m{n}".encode())
    wait_for(lambda: Receipt.objects.filter(queue_name=queue_name).count() == count)


def stop(proc) -> bytes:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()
    return stderr


def test_registry_row_counts_on_every_heartbeat(spawn, queue_name):
    Queue.objects.create(name=queue_name)
    proc = start_consumer(spawn, queue_name, "beating", heartbeat=0.2)
    publish_and_wait(queue_name, 5)
    row = wait_for(
        lambda: ConsumerRow.objects.filter(name="beating", processed=5, state="running").first()
    )
    assert row.pid == proc.pid
    stop(proc)


def test_registry_row_counts_after_sigterm(spawn, queue_name):
    """With a heartbeat far away, only the write at exit can bring the row to N."""
    Queue.objects.create(name=queue_name)
    proc = start_consumer(spawn, queue_name, "sigterm", heartbeat=600)
    row = wait_for(lambda: ConsumerRow.objects.filter(name="sigterm").first())
    publish_and_wait(queue_name, 6)
    row.refresh_from_db()
    assert (row.processed, row.state) == (0, "running")  # the first write, at start
    stderr = stop(proc)
    row.refresh_from_db()
    assert (row.processed, row.failed, row.state) == (6, 0, "stopped")
    assert row.stopped_at is not None
    assert summary(stderr).startswith(" [*] Stopped: 6 handled, 6 acked, 0 duplicate")
