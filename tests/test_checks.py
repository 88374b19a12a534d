"""Each data check fails on data crafted to break it, and every check passes on clean data."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest_analytics import create_runs_db, run

from unpod_runs.analytics.checks import (
    SEVERITIES,
    CHECKS_DIR,
    CheckResult,
    blocking_failures,
    format_check_failures,
    load_checks,
    run_checks,
)
from unpod_runs.analytics.models import build_models

CLEAN_RUNS = [
    run("R1", "completed", "2025-03-01T10:00:00", "2025-03-01T10:02:00"),
    run("R2", "failed", "2025-03-01T23:59:00", "2025-03-02T00:01:00"),
    run("R3", "partially_completed", "2025-03-02T10:00:00", "2025-03-02T10:00:00", collection_ref="collection_b"),
    run("R4", "pending", "2025-03-02T11:00:00", collection_ref=None),
    run("R5", "hold", "2025-03-02T12:00:00", space_token="SPACEBBBBBBBBBBBBBBBBBBB"),
    run("R6", "failed", "2025-03-02T12:00:00", "2025-03-02T12:00:03", deleted_at="2025-03-03T00:00:00"),
]
# The warnings, each proven by a test of its own below.
WARNING_CHECKS = {"runs_status_known", "runs_terminal_timestamps_present", "durations_not_exact"}


def built(path: Path, runs: list[dict]) -> duckdb.DuckDBPyConnection:
    con = create_runs_db(path, runs)
    build_models(con)
    return con


def failed(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results if not result.passed}


def test_every_check_passes_on_clean_data(tmp_path):
    with built(tmp_path / "clean.duckdb", CLEAN_RUNS) as con:
        results = run_checks(con)
    assert {result.name for result in results} == {check.name for check in load_checks()}
    assert failed(results) == {}
    assert format_check_failures(results) == ""


def test_check_files_declare_severity_and_purpose():
    checks = load_checks()
    # One check per file in sql/checks, and each is proven to fail on data that breaks it (the cases below).
    files = sorted(path.stem for path in CHECKS_DIR.glob("*.sql"))
    assert [check.name for check in checks] == files
    assert set(files) == {case[0] for case in ERROR_CASES} | WARNING_CHECKS
    for check in checks:
        assert check.severity in SEVERITIES, check.name
        assert len(check.description) > 20, check.name
    assert {check.name for check in checks if check.severity == "warn"} == WARNING_CHECKS


# (check, extra runs inserted before the build, SQL run on the built models): each breaks exactly one rule.
ERROR_CASES = [
    ("runs_run_id_not_null", [run(None, "completed", "2025-03-02T10:00:00")], None),
    ("runs_run_id_unique", [run("R1", "failed", "2025-03-01T10:00:00", "2025-03-01T10:05:00")], None),
    ("runs_modified_not_before_created", [run("R9", "completed", "2025-03-02T10:00:00", "2025-03-02T09:59:59")], None),
    ("rates_within_bounds", [], "update analytics.collection_stats set failure_rate = 1.5 where collection_ref = 'collection_b'"),
    ("rates_within_bounds", [], "update analytics.daily_run_stats set failure_rate = -0.1 where failure_rate is not null"),
    ("marts_grain_unique", [], "insert into analytics.space_stats select * from analytics.space_stats limit 1"),
    ("marts_add_up_to_runs", [], "delete from analytics.run_durations where run_id = 'R1'"),
    ("marts_add_up_to_runs", [], "delete from analytics.daily_run_stats where collection_ref is null"),
    ("mart_counts_consistent", [], "update analytics.collection_stats set open_runs = open_runs + 1"),
    ("open_runs_match_runs", [], "delete from analytics.open_runs where run_id = 'R4'"),
    ("open_runs_match_runs", [], "insert into analytics.open_runs select * from analytics.open_runs limit 1"),
    ("time_in_status_consistent", [], "insert into analytics.time_in_status (run_id, status, min_seconds, is_current) "
     "values ('R1', 'completed', 0, false)"),
    ("collection_time_in_status_consistent", [], "insert into analytics.collection_time_in_status (collection_ref, "
     "queued_runs, p50_queued_min_seconds, p50_queued_max_seconds, running_runs) values ('collection_a', 1, 5, 3, 0)"),
    ("collection_trends_consistent", [], "update analytics.collection_trends set is_failure_regression = true"),
    ("collection_recovery_consistent", [], "update analytics.collection_recovery set recovered_incidents = incidents + 1"),
    ("collection_freshness_consistent", [], "delete from analytics.collection_freshness where collection_ref is null"),
    ("overall_stats_consistent", [], "update analytics.overall_stats set failed_runs = failed_runs + 1"),
    ("daily_overall_stats_consistent", [], "delete from analytics.daily_overall_stats "
     "where day = (select min(day) from analytics.daily_overall_stats)"),
]


@pytest.mark.parametrize(("check", "extra_runs", "tamper"), ERROR_CASES, ids=[case[0] for case in ERROR_CASES])
def test_each_error_check_fails_on_data_that_breaks_it(tmp_path, check, extra_runs, tamper):
    with built(tmp_path / "bad.duckdb", CLEAN_RUNS + extra_runs) as con:
        if tamper:
            con.execute(tamper)
        results = run_checks(con)
    failures = failed(results)
    assert check in failures, f"{check} did not fail"
    result = failures[check]
    assert result.severity == "error"
    assert result.row_count >= 1 and result.sample_rows
    assert result in blocking_failures(results)
    message = format_check_failures(results)
    assert f"ERROR {check}:" in message
    assert result.description in message


def test_an_unknown_status_is_a_warning_that_names_it(tmp_path):
    runs = CLEAN_RUNS + [
        run("R7", "archived", "2025-03-02T10:00:00"),
        run("R8", "archived", "2025-03-02T10:00:00"),
        run("R9", None, "2025-03-02T10:00:00"),
    ]
    with built(tmp_path / "unknown.duckdb", runs) as con:
        results = run_checks(con)
    failures = failed(results)
    assert set(failures) == {"runs_status_known"}
    result = failures["runs_status_known"]
    assert result.severity == "warn"
    assert blocking_failures(results) == []
    assert {row["status"]: row["runs"] for row in result.sample_rows} == {"archived": 2, None: 1}
    message = format_check_failures(results)
    assert message.startswith("WARNING runs_status_known")
    assert "status='archived', runs=2" in message and "status=NULL, runs=1" in message


def test_a_terminal_run_without_timestamps_is_a_warning(tmp_path):
    with built(tmp_path / "no_created.duckdb", CLEAN_RUNS + [run("R9", "completed", "2025-03-02T10:00:00")]) as con:
        con.execute("update unpod.runs set created = null where run_id = 'R9'")
        results = run_checks(con)
    failures = failed(results)
    assert set(failures) == {"runs_terminal_timestamps_present"}
    assert failures["runs_terminal_timestamps_present"].sample_rows[0]["run_id"] == "R9"


def test_failures_show_at_most_five_example_rows_errors_first(tmp_path):
    bad = [run(f"R_bad_{index}", "failed", "2025-03-02T10:00:00", "2025-03-02T09:00:00") for index in range(7)]
    with built(tmp_path / "many.duckdb", CLEAN_RUNS + bad + [run("R_unk", "mystery", "2025-03-02T10:00:00")]) as con:
        results = run_checks(con)
    result = failed(results)["runs_modified_not_before_created"]
    assert result.row_count == 7 and len(result.sample_rows) == 5
    message = format_check_failures(results)
    assert "ERROR runs_modified_not_before_created: 7 offending rows" in message
    assert "example rows (5 of 7):" in message
    assert message.index("ERROR") < message.index("WARNING runs_status_known")
    assert message.count("run_id='R_bad_") == 5


def test_a_check_that_cannot_run_is_a_failed_error(tmp_path):
    with built(tmp_path / "broken.duckdb", CLEAN_RUNS) as con:
        con.execute("drop table analytics.space_stats")
        results = run_checks(con)
    result = failed(results)["marts_grain_unique"]
    assert result.severity == "error"
    assert "could not run" in result.sample_rows[0]["error"]
    message = format_check_failures(results)
    assert "ERROR marts_grain_unique: the check could not run" in message and "space_stats" in message
