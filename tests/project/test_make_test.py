"""`make test` on a fresh machine: scripts/ensure-chromium installs Chromium when it can
and otherwise stops the run, before anything else, with one line saying what to install.

Each test runs the real script (and the real Makefile) with a PATH of its own, so Chromium
is "missing" without touching the machine's: ``apt-get`` there is a stand-in that records
its calls, ``ENSURE_CHROMIUM_UID`` plays root or not, and the Makefile's ``BIN``/``STAMP``
point at a stand-in ``pytest`` that records that it ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-chromium"
FAKE_APT = """#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >> "{log}"
case "$*" in *install*) printf '#!/bin/sh\\n' > "{bin}/chromium"; chmod +x "{bin}/chromium";; esac
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    """A PATH directory with ``id`` and ``chmod`` only (no chromium, no apt-get yet)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "chmod"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return {"bin": bin_dir, "apt_log": tmp_path / "apt.log", "tmp": tmp_path}


def add_fake_apt(box: dict[str, Path]) -> None:
    apt = box["bin"] / "apt-get"
    apt.write_text(FAKE_APT.format(log=box["apt_log"], bin=box["bin"]))
    apt.chmod(0o755)


def add_fake_chromium(box: dict[str, Path]) -> None:
    chromium = box["bin"] / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)


def env_for(box: dict[str, Path], uid: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MESSAGING_"))}
    env.update(PATH=str(box["bin"]), ENSURE_CHROMIUM_UID=uid)
    return env


def run_script(box: dict[str, Path], uid: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT)], env=env_for(box, uid), capture_output=True, text=True, timeout=30
    )


def apt_calls(box: dict[str, Path]) -> list[str]:
    log = box["apt_log"]
    return log.read_text().splitlines() if log.exists() else []


def test_not_root_one_line_and_nothing_installed(sandbox: dict[str, Path]) -> None:
    add_fake_apt(sandbox)
    done = run_script(sandbox, uid="1000")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "apt-get install chromium" in lines[0]
    assert apt_calls(sandbox) == []


def test_root_without_apt_one_line(sandbox: dict[str, Path]) -> None:
    done = run_script(sandbox, uid="0")
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert "install it" in done.stderr


def test_root_with_apt_installs_debian_chromium(sandbox: dict[str, Path]) -> None:
    add_fake_apt(sandbox)
    done = run_script(sandbox, uid="0")
    assert done.returncode == 0, done.stderr
    assert apt_calls(sandbox) == [
        "noninteractive update -qq",
        "noninteractive install -y -qq chromium",
    ]


def test_root_when_the_install_fails(sandbox: dict[str, Path]) -> None:
    apt = sandbox["bin"] / "apt-get"
    apt.write_text("#!/bin/sh\nexit 100\n")
    apt.chmod(0o755)
    done = run_script(sandbox, uid="0")
    assert done.returncode == 1
    assert "could not install chromium" in done.stderr.splitlines()[-1]


def test_chromium_present_does_nothing(sandbox: dict[str, Path]) -> None:
    add_fake_apt(sandbox)
    add_fake_chromium(sandbox)
    done = run_script(sandbox, uid="0")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert apt_calls(sandbox) == []


def test_the_machines_own_chromium_is_found() -> None:
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, "")


def run_make_test(box: dict[str, Path], uid: str) -> tuple[subprocess.CompletedProcess[str], list]:
    """``make test`` with a stand-in pytest (records MESSAGING_TEST_DB and its arguments)
    and an up-to-date
    install stamp, so nothing real is installed or run."""
    fake_bin = box["tmp"] / "venv-bin"
    fake_bin.mkdir()
    ran = box["tmp"] / "pytest.log"
    pytest_stub = fake_bin / "pytest"
    pytest_stub.write_text(f'#!/bin/sh\necho "$MESSAGING_TEST_DB $*" >> "{ran}"\n')
    pytest_stub.chmod(0o755)
    stamp = box["tmp"] / "installed"
    stamp.touch()
    done = subprocess.run(
        [shutil.which("make"), "-s", "-C", str(ROOT), "test", f"BIN={fake_bin}", f"STAMP={stamp}"],
        env=env_for(box, uid),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, (ran.read_text().splitlines() if ran.exists() else [])


#: What ``make test`` runs: per database, the suite on xdist workers without the tests
#: that stop the broker, then those alone.
BOTH_DATABASES = [
    f"{db} {part}"
    for db in ("sqlite", "postgres")
    for part in ("-n 4 --dist loadgroup -m not broker_control --durations=15", "-m broker_control")
]


def test_make_test_stops_before_running_anything(sandbox: dict[str, Path]) -> None:
    add_fake_apt(sandbox)
    done, pytest_runs = run_make_test(sandbox, uid="1000")
    assert done.returncode != 0
    assert pytest_runs == []
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make: ")]
    assert len(ours) == 1 and "apt-get install chromium" in ours[0], done.stderr


def test_make_test_runs_both_databases_when_chromium_is_there(sandbox: dict[str, Path]) -> None:
    add_fake_chromium(sandbox)
    done, pytest_runs = run_make_test(sandbox, uid="1000")
    assert done.returncode == 0, done.stderr
    assert pytest_runs == BOTH_DATABASES


def test_make_test_as_root_installs_then_runs(sandbox: dict[str, Path]) -> None:
    add_fake_apt(sandbox)
    done, pytest_runs = run_make_test(sandbox, uid="0")
    assert done.returncode == 0, done.stderr
    assert len(apt_calls(sandbox)) == 2
    assert pytest_runs == BOTH_DATABASES
