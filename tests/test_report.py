"""The HTML report: self-contained, with the headline numbers and charts, readable on an empty database too."""

from __future__ import annotations

import re

import pytest
from conftest_analytics import add_load_history, create_runs_db, run, utc

from unpod_runs.models import build_models
from unpod_runs.report import write_report

# A matplotlib warning (singular limits, too many ticks) means a chart drew wrong: fail on it.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

RUNS = [
    run("R1", "completed", "2025-03-01T23:59:00", "2025-03-02T00:01:00", collection_ref="collection_fast"),
    run("R2", "failed", "2025-03-02T10:00:00", "2025-03-02T10:00:10", collection_ref="collection_fast"),
    run("R3", "partially_completed", "2025-03-02T10:00:00", "2025-03-02T11:00:00", collection_ref="collection_slow"),
    run("R4", "completed", "2025-03-03T10:00:00", "2025-03-03T12:00:00", collection_ref="collection_slow"),
    run("R5", "pending", "2025-03-03T11:00:00", collection_ref="collection_waiting"),
    run("R6", "mystery", "2025-03-03T11:00:00", collection_ref="<script>alert(1)</script>"),
]


def render(tmp_path, runs, zone: str = "UTC", loads: list[dict] | None = None) -> str:
    tmp_path.mkdir(exist_ok=True)
    with create_runs_db(tmp_path / "db.duckdb", runs) as con:
        if loads:
            add_load_history(con, loads)
        build_models(con)
        con.execute(f"set TimeZone = '{zone}'")
        path = write_report(con, tmp_path / "out" / "report.html")
    assert path == tmp_path / "out" / "report.html"
    assert [entry.name for entry in path.parent.iterdir()] == ["report.html"], "a temporary file was left behind"
    return path.read_text(encoding="utf-8")


def assert_self_contained(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page and "url(http" not in page
    assert "<link" not in page.lower()
    assert "<img" not in page.lower() or "data:image" in page


def test_report_is_one_self_contained_page_with_numbers_and_charts(tmp_path):
    loads = [{"load_id": "9", "started_at": utc("2025-03-04T02:00:00"), "finished_at": utc("2025-03-04T02:00:42"),
              "outcome": "ok", "full_scan": True}]
    page = render(tmp_path, RUNS, loads=loads)
    assert_self_contained(page)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 5
    for text in (
        "Runs", ">6<",                       # runs loaded
        "Failure rate", "25.0%",             # 1 failed of 4 terminal
        "1 failed of 4 terminal",
        "2 open",
        "2025-03-03 11:00 UTC",              # data as of: the latest modified, in UTC
        "latest load 2025-03-04 02:00 UTC: ok (full scan)",
        "collection_fast", "collection_slow",
        "Most failing", "Slowest (by p95 duration)",
        "Failure rate per collection", "Duration per collection", "Runs and failure rate per day", "Duration per day",
    ):
        assert text in page, text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'unknown</span>' in page                # the unknown status is flagged in the status table


def test_report_does_not_depend_on_the_session_time_zone(tmp_path):
    generated = re.compile(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    in_utc = generated.sub("", render(tmp_path / "utc", RUNS))
    in_tokyo = generated.sub("", render(tmp_path / "tokyo", RUNS, zone="Asia/Tokyo"))
    assert in_tokyo == in_utc


@pytest.mark.parametrize(
    "runs",
    [
        [],
        [run("R1", "pending", "2025-03-01T10:00:00")],
        [run("R1", "failed", "2025-03-01T10:00:00", "2025-03-01T10:00:05", collection_ref=None)],
        [run("R1", "completed", "2025-03-01T10:00:00"), run("R2", "completed", "2025-03-02T10:00:00")],
    ],
    ids=["no_runs", "only_open", "single_failed_without_collection", "zero_durations"],
)
def test_report_renders_small_and_empty_databases(tmp_path, runs):
    page = render(tmp_path, runs)
    assert_self_contained(page)
    if not runs:
        assert "No runs are loaded yet" in page
    elif runs[0]["status"] == "pending":
        assert "No collection has a terminal run yet." in page
    elif runs[0]["status"] == "failed":
        assert "(no collection_ref)" in page and "100.0%" in page
    else:
        assert "0 s" in page and "0.0%" in page
