"""A refreshed build equals a build from scratch: over several loads, every analytics relation, row for row."""

from __future__ import annotations

import logging
import random
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest_analytics import RUNS_DDL, create_runs_db, insert_runs, run, utc

from unpod_runs.pipeline.load import build_analytics
from unpod_runs.analytics.models import SCHEMA, BuildState, build_models, build_state

STATUSES = ["completed", "completed", "completed", "failed", "partially_completed", "running", "pending", None,
            "archived"]
SPACES = ["SPACEAAAAAAAAAAAAAAAAAAA", "SPACEBBBBBBBBBBBBBBBBBBB", "SPACECCCCCCCCCCCCCCCCCCC"]


def history(rng: random.Random, runs: int) -> list[dict]:
    """Runs over 60 days in 20 collections (one of them NULL), some open, some gone."""
    rows = []
    for index in range(runs):
        created = utc("2025-01-01T00:00:00") + timedelta(days=rng.randrange(60), seconds=rng.randrange(86_400))
        rows.append(_run(rng, f"R{index:04d}", created, load_id="1700000000.0"))
    return rows


def _run(rng: random.Random, run_id: str | None, created, load_id: str, **fields) -> dict:
    status = fields.pop("status", rng.choice(STATUSES))
    modified = created + timedelta(seconds=rng.choice([0, 1, 30, 95, 95, 600, 7200]))
    row = run(
        run_id, status, "2025-01-01T00:00:00",
        collection_ref=fields.pop("collection_ref", rng.choice([None, *[f"collection_{n:02d}" for n in range(19)]])),
        space_token=rng.choice(SPACES),
        deleted_at=None,
        _dlt_load_id=load_id,
        **fields,
    )
    row.update(created=created, modified=modified)
    return row


def a_night(rng: random.Random, con: duckdb.DuckDBPyConnection, night: int) -> None:
    """What a load does to unpod.runs: new runs, and changed runs replaced (dlt's delete-insert merge)."""
    load_id = f"{1700000000 + night * 86_400}.0"
    stored = {row[0]: row for row in con.execute("select run_id, created, collection_ref from unpod.runs "
                                                  "where run_id is not null").fetchall()}
    changed = []
    for run_id in rng.sample(sorted(stored), 6):
        _, created, collection_ref = stored[run_id]
        kind = rng.choice(["finish", "finish", "reopen", "move_collection", "move_day", "null_collection"])
        fields = {"status": rng.choice(["completed", "failed"]) if kind == "finish" else None}
        if kind == "reopen":
            fields["status"] = "running"
        fields["collection_ref"] = collection_ref
        if kind == "move_collection":
            fields["collection_ref"] = f"collection_{rng.randrange(19):02d}"
        if kind == "null_collection":
            fields["collection_ref"] = None
        if kind == "move_day":
            created = created - timedelta(days=rng.randrange(1, 40))
        changed.append(_run(rng, run_id, created, load_id, **fields))
    for index in range(4):
        created = utc("2025-03-02T00:00:00") + timedelta(days=night, seconds=rng.randrange(86_400))
        changed.append(_run(rng, f"N{night:02d}_{index}", created, load_id))
    if night == 4:
        # listed again after a full scan found it gone: its new row has no deleted_at
        gone = con.execute("select run_id, created from unpod.runs where deleted_at is not null limit 1").fetchone()
        changed.append(_run(rng, gone[0], gone[1], load_id, status="completed"))
    con.execute("delete from unpod.runs where run_id in (select unnest(?))",
                [[row["run_id"] for row in changed if row["run_id"]]])
    insert_runs(con, changed)


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    relations = [name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = ? and table_name != 'model_build_state'",
        [SCHEMA],
    ).fetchall()]
    return {name: sorted(con.execute(f"select * from {SCHEMA}.{name}").fetchall(), key=repr) for name in relations}


def from_scratch(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, list[tuple]]:
    """The same unpod.runs in a new file, built in full."""
    with duckdb.connect(str(path)) as scratch:
        scratch.execute("create schema unpod")
        scratch.execute(RUNS_DDL)
        loaded = con.sql("select * from unpod.runs").to_arrow_table()
        scratch.execute("insert into unpod.runs select * from loaded")
        build_models(scratch)
        return snapshot(scratch)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_refreshed_build_equals_a_full_build_night_after_night(tmp_path, seed, caplog):
    caplog.set_level(logging.DEBUG, logger="unpod_runs.analytics.models")
    rng = random.Random(seed)
    with create_runs_db(tmp_path / "runs.duckdb", history(rng, 400)) as con:
        con.execute("update unpod.runs set deleted_at = '2025-02-28 00:00:00+00' where run_id in ('R0001', 'R0002')")
        build_models(con, incremental=True)
        assert build_state(con).kind == "full"
        for night in range(1, 7):
            a_night(rng, con, night)
            build_models(con, incremental=True)
            state = build_state(con)
            assert (state.kind, state.built_through) == ("incremental", f"{1700000000 + night * 86_400}.0")
            assert snapshot(con) == from_scratch(con, tmp_path / f"scratch_{night}.duckdb"), f"night {night}"
    refreshed = {record.args[0] for record in caplog.records if record.msg.startswith("refreshed %s")}
    assert refreshed >= {"analytics.run_durations", "analytics.run_stats"}


def test_a_quiet_night_computes_again_only_the_groups_its_runs_left_or_joined(tmp_path, caplog):
    """run_stats, grouping set by grouping set: a group no run left or joined keeps its row as it was."""
    caplog.set_level(logging.DEBUG, logger="unpod_runs.analytics.models")
    rng = random.Random(7)
    with create_runs_db(tmp_path / "runs.duckdb", history(rng, 400)) as con:
        build_models(con, incremental=True)
        # A mark on every row: a row computed again loses it.
        con.execute("update analytics.run_stats set total_runs = -1")
        insert_runs(con, [_run(rng, "N_quiet", utc("2025-03-10T10:00:00"), "1700086400.0",
                               collection_ref="collection_new", status="completed")])
        build_models(con, incremental=True)
        assert build_state(con).kind == "incremental"
        rows = con.execute("select grain, day, collection_ref, total_runs from analytics.run_stats").fetchall()
        computed_again = {(grain, day, collection) for grain, day, collection, runs in rows if runs != -1}
        # The new run's groups by day and by collection; the spaces (a third of the runs each) and the row over
        # every run are computed whole.
        assert computed_again == {
            ("day, collection_ref", date(2025, 3, 10), "collection_new"),
            ("day", date(2025, 3, 10), None),
            ("collection_ref", None, "collection_new"),
            ("space_token", None, None),
            ("", None, None),
        }
        assert ("refreshed %s: by group %s; whole %s", ("analytics.run_stats", "'day, collection_ref'; 'day'; "
                "'collection_ref'", "'space_token'; ''")) in [(record.msg, record.args) for record in caplog.records]
        (new,) = con.execute("select runs, terminal_runs from analytics.daily_run_stats "
                             "where collection_ref = 'collection_new'").fetchall()
        assert new == (1, 1)


def test_a_night_that_changed_most_runs_builds_everything(tmp_path):
    rng = random.Random(4)
    with create_runs_db(tmp_path / "runs.duckdb", history(rng, 50)) as con:
        build_models(con, incremental=True)
        con.execute("update unpod.runs set _dlt_load_id = '1700086400.0', status = 'failed'")
        build_models(con, incremental=True)
        assert build_state(con).kind == "full"
        assert snapshot(con) == from_scratch(con, tmp_path / "scratch.duckdb")


def test_a_changed_model_file_builds_everything(tmp_path):
    rng = random.Random(5)
    with create_runs_db(tmp_path / "runs.duckdb", history(rng, 50)) as con:
        build_models(con, incremental=True)
        con.execute("update analytics.model_build_state set models_digest = 'an older release'")
        a_night(rng, con, 1)
        build_models(con, incremental=True)
        assert build_state(con).kind == "full"
        assert snapshot(con) == from_scratch(con, tmp_path / "scratch.duckdb")


def test_a_night_with_broken_rows_is_built_in_full_and_says_so(tmp_path):
    """A refresh trusts what the checks guarantee (one row per run_id, every row with one): when a night breaks
    that, the nightly build notices it in the checks and builds everything, that night and until it is fixed."""
    rng = random.Random(6)
    with create_runs_db(tmp_path / "runs.duckdb", history(rng, 80)) as con:
        assert build_analytics(con, None, full=False) == ""
        nights = [
            [_run(rng, None, utc("2025-01-20T10:00:00"), "1700086400.0", collection_ref="no_id")],
            [_run(rng, "N1", utc("2025-01-27T11:00:00"), "1700172800.0", collection_ref="no_id")],
            # a second copy of an old run, beside the fix of the first night
            [_run(rng, "R0007", utc("2025-01-05T00:00:00"), "1700259200.0", status="completed")],
            [_run(rng, "N2", utc("2025-01-05T00:00:00"), "1700345600.0")],
        ]
        expected_errors = ["runs_run_id_not_null", "runs_run_id_not_null", "runs_run_id_unique", "runs_run_id_unique"]
        for night, (rows, error) in enumerate(zip(nights, expected_errors)):
            if night == 2:
                con.execute("delete from unpod.runs where run_id is null")
            insert_runs(con, rows)
            assert f"ERROR {error}:" in build_analytics(con, None, full=False), f"night {night}"
            assert build_state(con).kind == "full"
            assert snapshot(con) == from_scratch(con, tmp_path / f"scratch_{night}.duckdb"), f"night {night}"
        con.execute("delete from unpod.runs where run_id = 'R0007' and _dlt_load_id = '1700259200.0'")
        insert_runs(con, [_run(rng, "N3", utc("2025-01-05T00:00:00"), "1700432000.0")])
        assert build_analytics(con, None, full=False) == ""
        insert_runs(con, [_run(rng, "N4", utc("2025-01-05T00:00:00"), "1700518400.0")])
        assert build_analytics(con, None, full=False) == ""
        assert build_state(con) == BuildState("incremental", "1700518400.0", "1700518400.0")
        assert snapshot(con) == from_scratch(con, tmp_path / "scratch_fixed.duckdb")
