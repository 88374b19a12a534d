"""The guard: every model and check of ``sql/`` runs on a real PostgreSQL, translated from DuckDB's SQL, and a
construct that PostgreSQL does not run fails by name instead of passing silently. And the builder's DDL there: a
changed model keeps its table (tests/test_engines.py), unless it became a view or a table."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from conftest import LoadEnv
from unpod_runs.analytics.checks import load_checks, run_checks
from unpod_runs.pipeline.engines import PostgresEngine
from unpod_runs.analytics.portable import native_sql, table_columns
from unpod_runs.analytics.models import SCHEMA, SQL_DIR, ModelBuildError, build_models, load_models


@pytest.fixture
def postgres(load_env: LoadEnv, postgres_after_night_one: str, monkeypatch: pytest.MonkeyPatch) -> PostgresEngine:
    """A PostgreSQL holding one night of the sandbox's world, loaded by the product (copied from a template)."""
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_after_night_one)
    return PostgresEngine(load_env.db)


def test_every_model_builds_on_postgresql_with_its_documented_columns(postgres: PostgresEngine):
    with postgres.writer() as con:
        built = build_models(con)
        for model in load_models():
            assert table_columns(con, SCHEMA, model.name) == list(model.columns), model.path
    assert built == [model.relation for model in load_models()]


def test_every_check_runs_on_postgresql(postgres: PostgresEngine):
    with postgres.writer() as con:
        results = run_checks(con)
        for check in load_checks():  # each query as PostgreSQL gets it, over the checked_runs the checks defined
            con.execute(f"select count(*) from ({native_sql(con, check.query)}) as offending")
    assert [result.name for result in results] == [check.name for check in load_checks()]
    errors = {result.name: result.sample_rows for result in results if result.severity == "error" and not result.passed}
    assert errors == {}


def test_a_construct_postgresql_does_not_run_fails_the_build_by_name(postgres: PostgresEngine, tmp_path: Path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    # GROUP BY ALL is DuckDB's: sqlglot passes it through to PostgreSQL unchanged, and PostgreSQL refuses it.
    (sql_dir / "marts" / "runs_per_mode.sql").write_text(
        "-- One row per run_mode.\n-- columns:\n--   run_mode: the mode.\n--   runs: its runs.\n"
        "select run_mode, count(*) as runs from analytics.stg_runs group by all\n"
    )
    with postgres.writer() as con:
        build_models(con)
        with pytest.raises(ModelBuildError, match=r"analytics\.runs_per_mode \(sql/marts/runs_per_mode\.sql\)"):
            build_models(con, sql_dir=sql_dir)
        # The failed build left the previous one whole: its models are all still there.
        assert "runs_per_mode" not in {name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'analytics'").fetchall()}
        assert con.execute("select count(*) from analytics.run_durations").fetchone()[0] == len(
            postgres_world_runs(con))


def postgres_world_runs(con) -> list[tuple]:
    return con.execute("select run_id from unpod.runs where deleted_at is null").fetchall()


def test_a_check_postgresql_cannot_run_is_a_failed_error(postgres: PostgresEngine, tmp_path: Path):
    (tmp_path / "modes_listed.sql").write_text(
        "-- Every mode is listed.\n-- severity: warn\n"
        "select run_mode from analytics.stg_runs group by all having count(*) < 0\n"
    )
    with postgres.writer() as con:
        build_models(con)
        (result,) = run_checks(con, checks_dir=tmp_path)
    assert (result.passed, result.severity) == (False, "error")
    assert "the check could not run" in result.sample_rows[0]["error"]


def test_durations_do_not_depend_on_the_session_time_zone(postgres: PostgresEngine):
    """One hour across New York's spring-forward change is 3600 s, whatever the reader's TimeZone says."""
    query = (
        "select (epoch_us(cast('2026-03-08 07:30:00+00' as timestamptz)) "
        "- epoch_us(cast('2026-03-08 06:30:00+00' as timestamptz))) / 1e6 as seconds"
    )
    with postgres.writer() as con:
        con.execute("set timezone = 'America/New_York'")
        assert con.execute(native_sql(con, query)).fetchone()[0] == 3600.0


def test_a_model_that_became_a_view_or_a_table_is_replaced_and_the_log_says_readers_may_see_it_empty(
    postgres: PostgresEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    for path, materialized in ((sql_dir / "marts" / "runs_by_status.sql", "view"),
                               (sql_dir / "staging" / "stg_runs.sql", "table")):
        text = path.read_text()
        path.write_text(text.replace("-- columns:\n", f"-- materialized: {materialized}\n-- columns:\n", 1))
    with postgres.writer() as con:
        (runs_by_status,) = con.execute("select count(*) from analytics.runs_by_status").fetchone()
        with caplog.at_level(logging.WARNING, logger="unpod_runs.analytics.models"):
            build_models(con, sql_dir=sql_dir)
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_schema = 'analytics'").fetchall())
        assert con.execute("select count(*) from analytics.runs_by_status").fetchone() == (runs_by_status,)
        assert con.execute("select count(*) from analytics.stg_runs").fetchone() == (len(postgres_world_runs(con)),)
    assert (kinds["runs_by_status"], kinds["stg_runs"]) == ("VIEW", "BASE TABLE")
    replaced = [record.getMessage() for record in caplog.records if "event=model_replaced" in record.getMessage()]
    assert sorted(replaced) == [
        f"event=model_replaced relation=analytics.{name} was={was} now={now} "
        "note='readers whose snapshot predates this build may see it empty once'"
        for name, was, now in (("runs_by_status", "table", "view"), ("stg_runs", "view", "table"))
    ]
