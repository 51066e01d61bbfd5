"""The bench's report and options as plain code: rows, medians of rounds with their
min–max, the target ratios, the markdown table and results.md, the --only phases. No
broker, no database, nothing run."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from bench import options
from bench.report import (
    HEADER,
    Check,
    Results,
    Row,
    add_targets,
    markdown,
    render,
    render_row,
    round_ratios,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _no_bench_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults, whatever BENCH_* the caller's shell has."""
    for name in [n for n in os.environ if n.startswith("BENCH_")]:
        monkeypatch.delenv(name)


def test_a_row_is_the_median_of_its_rounds() -> None:
    row = Row("b-postgres", "raw", messages=1000, samples=[2.0, 1.0, 4.0])
    assert row.seconds == 2.0
    assert row.rates == [500.0, 1000.0, 250.0]
    assert row.rate == 500.0
    assert row.rate_range == (250.0, 1000.0)


def test_one_round_has_no_range_and_an_unmeasured_row_no_rate() -> None:
    assert Row("a", "x", messages=10, samples=[2.0]).rate_range is None
    assert Row("a", "x", messages=10).rate is None
    assert Row("admin", "x", messages=10, samples=[0.5], rate_unit=False).rate is None


def test_ratio_is_of_the_medians_with_a_verdict() -> None:
    results = Results()
    results.row("b-postgres", "raw", messages=1000, samples=[1.0])
    results.row("p1-postgres", "app", messages=1000, samples=[1.25])
    results.ratio("p1-postgres", "b-postgres", 0.8)
    assert results.rows["p1-postgres"].checks == [Check("0.80× b-postgres", "≥ 0.8×", True)]
    results.rows["p1-postgres"].samples = [2.0]
    results.rows["p1-postgres"].checks = []
    results.ratio("p1-postgres", "b-postgres", 0.8)
    assert results.rows["p1-postgres"].checks == [Check("0.50× b-postgres", "≥ 0.8×", False)]


def test_a_miss_just_below_the_target_shows_a_third_digit() -> None:
    results = Results()
    results.row("c-sqlite", "raw", messages=1000, samples=[1.0])
    results.row("p300-sqlite", "app", messages=1000, samples=[1.0 / 0.797])
    results.row("p1-sqlite", "app", messages=1000, samples=[1.0 / 0.803])
    results.ratio("p300-sqlite", "c-sqlite", 0.8)
    results.ratio("p1-sqlite", "c-sqlite", 0.8)
    assert results.rows["p300-sqlite"].checks == [Check("0.797× c-sqlite", "≥ 0.8×", False)]
    assert results.rows["p1-sqlite"].checks == [Check("0.80× c-sqlite", "≥ 0.8×", True)]


def test_ratio_of_rounds_shows_the_min_max_of_the_same_round_pairs() -> None:
    results = Results()
    base = results.row("b-postgres", "raw", messages=100, samples=[1.0, 1.0, 2.0])
    row = results.row("p1-postgres", "app", messages=100, samples=[2.0, 1.0, 2.0])
    assert round_ratios(row, base) == [0.5, 1.0, 1.0]
    results.ratio("p1-postgres", "b-postgres", 0.8)
    # median 50 / median 100 = 0.5; the rounds: 0.5, 1.0, 1.0
    assert row.checks == [Check("0.50× b-postgres (0.50–1.00)", "≥ 0.8×", False)]


def test_ratio_rounds_are_not_paired_when_a_round_is_missing() -> None:
    base = Row("b", "raw", messages=100, samples=[1.0, 1.0])
    assert round_ratios(Row("p1", "app", messages=100, samples=[1.0]), base) == []
    assert round_ratios(Row("p1", "app", messages=100, samples=[1.0, 2.0, 3.0]), base) == []


def test_ratio_without_a_rate_or_without_the_rows() -> None:
    results = Results()
    results.row("b-sqlite", "raw", messages=100, error="boom")
    results.row("p1-sqlite", "app", messages=100, samples=[1.0])
    results.ratio("p1-sqlite", "b-sqlite", 0.8)
    results.ratio("p1-sqlite", "nothing", 0.8)
    results.ratio("nothing", "b-sqlite", 0.8)
    assert results.rows["p1-sqlite"].checks == [Check("– × b-sqlite", "≥ 0.8×", None)]
    assert results.errors == [results.rows["b-sqlite"]]


def test_each_row_is_checked_against_its_floor_and_context_rows() -> None:
    """Each app row against its same-work floor (s-DB, b-DB, c-DB) at ≥ 0.8×; send also
    ≥ 5× P1; p300 on PostgreSQL also ≥ 0.6× the no-DB consumer; P0 and a as context."""
    results = Results()
    rows = ("P0", "P1", "s-postgres", "send-postgres", "a", "b-postgres", "p1-postgres",
            "c-postgres", "p300-postgres", "c-sqlite", "p300-sqlite")  # fmt: skip
    for key in rows:
        results.row(key, key, messages=100, samples=[1.0])
    results.rows["a"].samples = [0.5]
    results.rows["s-postgres"].samples = [0.8]
    results.rows["c-sqlite"].samples = [0.5]
    add_targets(results, ["sqlite", "postgres"], 300)
    targets = {k: [(c.text, c.target) for c in r.checks] for k, r in results.rows.items()}
    assert targets["send-postgres"] == [
        ("0.80× s-postgres", "≥ 0.8×"),
        ("1.00× P1", "≥ 5×"),
        ("1.00× P0", ""),  # shown, no target
    ]
    assert targets["s-postgres"] == [("1.25× P0", "")]
    assert targets["p1-postgres"] == [("1.00× b-postgres", "≥ 0.8×")]
    assert targets["p300-postgres"] == [("1.00× c-postgres", "≥ 0.8×"), ("0.50× a", "≥ 0.6×")]
    assert targets["p300-sqlite"] == [("0.50× c-sqlite", "≥ 0.8×"), ("0.50× a", "")]
    assert targets["c-postgres"] == [("0.50× a", "")]
    assert targets["P0"] == targets["b-postgres"] == []
    verdicts = [c.ok for c in results.rows["p300-sqlite"].checks]
    assert verdicts == [False, None]


def test_render_one_round_as_before() -> None:
    results = Results()
    row = results.row("p1-postgres", "consume: `runconsumer` prefetch 1, PostgreSQL", messages=2000)
    row.samples = [2.5]
    row.note = "process wall 4.4s incl. idle 2s"
    row.checks = [Check("0.75× b-postgres", "≥ 0.8×", False)]
    send = results.row("send-sqlite", "publish: `send --count`, SQLite", messages=10_000)
    send.samples = [0.5]
    send.retried = True
    send.checks = [Check("0.94× P0", "≥ 0.5×", True), Check("9.86× P1", "≥ 5×", True)]
    assert render(results).splitlines() == [
        *HEADER,
        "| p1-postgres | consume: `runconsumer` prefetch 1, PostgreSQL (process wall 4.4s incl. "
        "idle 2s) | 2,000 | 2.50 | 800 | 0.75× b-postgres | ≥ 0.8× | **miss** |",
        "| send-sqlite | publish: `send --count`, SQLite (retried once) | 10,000 | 0.50 | "
        "20,000 | 0.94× P0 | ≥ 0.5× | pass |",
        "| | | | | | 9.86× P1 | ≥ 5× | pass |",
    ]


def test_render_rounds_show_min_max_of_msg_per_second() -> None:
    row = Row("b-postgres", "raw", messages=3000, samples=[2.0, 3.0, 1.5])
    assert render_row(row) == ["| b-postgres | raw | 3,000 | 2.00 | 1,500 (1,000–2,000) |  |  |  |"]


def test_render_errors_and_values() -> None:
    error = Row("p1-sqlite", "app", messages=60, samples=[1.0], error="0 acked receipts")
    admin = Row("admin-sqlite", "admin", messages=500, samples=[0.07], value="—", rate_unit=False)
    none = Row("admin-postgres", "admin", messages=500, value="not available", rate_unit=False)
    assert render_row(error) == ["| p1-sqlite | app | 60 | – | error: 0 acked receipts |  |  |  |"]
    assert render_row(admin) == ["| admin-sqlite | admin | 500 | 0.07 | — |  |  |  |"]
    assert render_row(none) == ["| admin-postgres | admin | 500 | – | not available |  |  |  |"]


def test_markdown_report() -> None:
    args = options.parse_args([])
    text = markdown("TABLE", args, "2 CPUs", dt.datetime(2026, 12, 1, 10, 5, tzinfo=dt.UTC))
    assert text.startswith(
        "# Benchmark results\n\n`make bench` on 2026-12-01 10:05 UTC.\n\nMachine: 2 CPUs.\n\n"
        "Sizes: 256-byte persistent messages; consume 50,000 (prefetch 300) and 10,000 "
        "(prefetch 1); publish 100,000 (10,000 with a confirm each); memory 50,000 → "
        "200,000; overview 1,000,000 receipts; 3 round(s), median (min–max of msg/s and of "
        "each round's ratio).\n\nTABLE\n\nMethod: "
    )
    args.repeat = 1
    assert "1 round(s), median." in markdown(
        "TABLE", args, "2 CPUs", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )


def test_only_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    assert options.parse_args([]).only == {
        "publish", "calls", "consume-high", "consume-p1", "memory", "overview", "retry",
        "io", "tasks",
    }  # fmt: skip
    monkeypatch.setenv("BENCH_ONLY", "consume-p1")
    monkeypatch.setenv("BENCH_DBS", "postgres")
    monkeypatch.setenv("BENCH_N_P1", "5000")
    args = options.parse_args([])
    assert (args.only, args.dbs, args.n_p1) == ({"consume-p1"}, ["postgres"], 5000)
    with pytest.raises(SystemExit):
        options.parse_args(["--only", "consume-p2"])
    with pytest.raises(SystemExit):
        options.parse_args(["--dbs", "mysql"])


def test_help_names_every_phase(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        options.parse_args(["--help"])
    out = capsys.readouterr().out
    for phase in options.PHASES:
        assert f"\n  {phase} " in out
    assert "BENCH_ONLY=consume-p1 BENCH_DBS=postgres BENCH_N_P1=5000" in out
