"""The SQL models against the SPEC.md definitions, recomputed in plain Python from the same runs."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest_analytics import (
    add_load_history,
    add_spaces,
    assert_metrics_equal,
    create_runs_db,
    expected_collection_stats,
    expected_daily_overall_stats,
    expected_daily_run_stats,
    expected_overall_stats,
    expected_run_durations,
    group_metrics,
    listed,
    rows_as_dicts,
    rows_from_truth,
    run,
    utc,
)

from unpod_runs.analytics.models import (SCHEMA, SQL_DIR, ModelBuildError, build_models, describe_models, load_models,
                                         split_header)
from unpod_runs.sandbox.world import World

SPACE_A = "SPACEAAAAAAAAAAAAAAAAAAA"
SPACE_B = "SPACEBBBBBBBBBBBBBBBBBBB"

# Each group is one edge case of the issue; the comments say which.
EDGE_RUNS = [
    # a collection with no terminal run: NULL rate and percentiles
    run("R_open_1", "pending", "2025-03-03T10:00:00", collection_ref="no_terminal"),
    run("R_open_2", "running", "2025-03-03T11:00:00", "2025-03-03T11:05:00", collection_ref="no_terminal"),
    # a single run
    run("R_single", "completed", "2025-03-03T12:00:00", "2025-03-03T12:01:30", collection_ref="single"),
    # all failed
    run("R_fail_1", "failed", "2025-03-04T08:00:00", "2025-03-04T08:00:10", collection_ref="all_failed"),
    run("R_fail_2", "failed", "2025-03-04T09:00:00", "2025-03-04T09:00:20", collection_ref="all_failed"),
    run("R_fail_3", "failed", "2025-03-04T10:00:00", "2025-03-04T10:00:40", collection_ref="all_failed"),
    # partially_completed is terminal, not failed
    run("R_part_1", "completed", "2025-03-05T10:00:00", "2025-03-05T10:01:40", collection_ref="partial"),
    run("R_part_2", "partially_completed", "2025-03-05T10:00:00", "2025-03-05T10:03:20", collection_ref="partial"),
    run("R_part_3", "partially_completed", "2025-03-05T11:00:00", "2025-03-05T11:05:00", collection_ref="partial"),
    run("R_part_4", "failed", "2025-03-05T12:00:00", "2025-03-05T12:00:50", collection_ref="partial"),
    # unknown statuses and a missing one are open
    run("R_unk_1", "archived", "2025-03-05T10:00:00", "2025-03-05T18:00:00", collection_ref="unknown"),
    run("R_unk_2", "weird_new_status", "2025-03-05T10:00:00", collection_ref="unknown"),
    run("R_unk_3", None, "2025-03-05T10:00:00", collection_ref="unknown"),
    run("R_unk_4", "completed", "2025-03-05T10:00:00", "2025-03-05T10:00:01.250000", collection_ref="unknown"),
    # runs around midnight UTC, and at hours whose local date differs in Los Angeles (UTC-8) and Tokyo (UTC+9)
    run("R_mid_1", "completed", "2025-03-01T23:59:59", "2025-03-02T00:00:30", collection_ref="midnight"),
    run("R_mid_2", "failed", "2025-03-02T00:00:00", "2025-03-02T00:10:00", collection_ref="midnight"),
    run("R_mid_3", "completed", "2025-03-02T03:00:00", "2025-03-02T03:00:00", collection_ref="midnight"),
    run("R_mid_4", "completed", "2025-03-01T16:00:00", "2025-03-01T16:30:00", collection_ref="midnight"),
    run("R_mid_5", "pending", "2025-03-01T00:00:00", collection_ref="midnight"),
    # no collection_ref: a group of its own, in another space
    run("R_null_1", "completed", "2025-03-06T10:00:00", "2025-03-06T10:00:05", collection_ref=None, space_token=SPACE_B),
    run("R_null_2", "failed", "2025-03-06T10:00:00", "2025-03-06T10:00:15", collection_ref=None, space_token=SPACE_B),
    # enough runs for the percentiles to interpolate
    *[
        run(f"R_many_{index:02d}", "completed" if index % 4 else "failed", "2025-03-07T10:00:00",
            f"2025-03-07T10:{index:02d}:{(index * 7) % 60:02d}", collection_ref="many", space_token=SPACE_B)
        for index in range(1, 22)
    ],
    # gone from the API: out of every relation, even as the only run of its collection
    run("R_gone_1", "failed", "2025-03-03T12:00:00", "2025-03-03T12:09:00", collection_ref="single",
        deleted_at="2025-03-08T00:00:00"),
    run("R_gone_2", "completed", "2025-03-03T12:00:00", "2025-03-03T12:09:00", collection_ref="gone",
        deleted_at="2025-03-08T00:00:00"),
]


@pytest.fixture
def edge_con(tmp_path: Path):
    con = create_runs_db(tmp_path / "edge.duckdb", EDGE_RUNS)
    build_models(con)
    yield con
    con.close()


def keyed(con: duckdb.DuckDBPyConnection, relation: str, *keys: str) -> dict:
    rows = rows_as_dicts(con, f"select * from {relation}")
    result = {tuple(row[key] for key in keys) if len(keys) > 1 else row[keys[0]]: row for row in rows}
    assert len(result) == len(rows), f"{relation} has repeated keys {keys}"
    return result


def assert_relation_matches(actual: dict, expected: dict, relation: str) -> None:
    assert set(actual) == set(expected), f"{relation}: groups differ"
    for key, metrics in expected.items():
        assert_metrics_equal(actual[key], metrics, f"{relation}[{key!r}]")


def assert_all_metrics(con: duckdb.DuckDBPyConnection, runs: list[dict]) -> None:
    """Every metric of every group of the three SPEC.md marts and their totals, against the Python recomputation."""
    collection_stats = keyed(con, "analytics.collection_stats", "collection_ref")
    assert_relation_matches(collection_stats, expected_collection_stats(runs), "collection_stats")
    daily = keyed(con, "analytics.daily_run_stats", "day", "collection_ref")
    assert_relation_matches(daily, expected_daily_run_stats(runs), "daily_run_stats")
    durations = keyed(con, "analytics.run_durations", "run_id")
    assert_relation_matches(durations, expected_run_durations(runs), "run_durations")
    (overall,) = rows_as_dicts(con, "select * from analytics.overall_stats")
    assert_metrics_equal(overall, expected_overall_stats(runs), "overall_stats")
    daily_overall = keyed(con, "analytics.daily_overall_stats", "day")
    assert_relation_matches(daily_overall, expected_daily_overall_stats(runs), "daily_overall_stats")


def test_marts_match_the_spec_definitions_on_edge_cases(edge_con):
    assert_all_metrics(edge_con, EDGE_RUNS)


def test_edge_cases_read_as_the_spec_says(edge_con):
    stats = keyed(edge_con, "analytics.collection_stats", "collection_ref")
    no_terminal = stats["no_terminal"]
    assert (no_terminal["terminal_runs"], no_terminal["open_runs"]) == (0, 2)
    assert no_terminal["failure_rate"] is None
    assert no_terminal["p50_duration_seconds"] is None and no_terminal["avg_duration_seconds"] is None
    assert stats["single"]["total_runs"] == 1 and stats["single"]["p95_duration_seconds"] == 90.0
    assert stats["all_failed"]["failure_rate"] == 1.0
    assert stats["all_failed"]["p50_duration_seconds"] == 20.0
    assert stats["partial"]["failure_rate"] == 0.25
    assert stats["partial"]["partially_completed_runs"] == 2
    assert (stats["unknown"]["open_runs"], stats["unknown"]["terminal_runs"]) == (3, 1)
    assert stats["unknown"]["p50_duration_seconds"] == 1.25
    assert stats[None]["failure_rate"] == 0.5
    assert "gone" not in stats
    assert stats["midnight"]["first_created"] == utc("2025-03-01T00:00:00")

    days = {row["run_id"]: row["day"] for row in rows_as_dicts(edge_con, "select * from analytics.run_durations")}
    assert days["R_mid_1"] == date(2025, 3, 1)
    assert days["R_mid_2"] == date(2025, 3, 2)
    assert days["R_mid_3"] == date(2025, 3, 2)
    assert days["R_mid_4"] == date(2025, 3, 1)
    assert "R_gone_1" not in days

    durations = keyed(edge_con, "analytics.run_durations", "run_id")
    assert durations["R_open_2"]["finished_at"] is None and durations["R_open_2"]["duration_seconds"] is None
    assert durations["R_mid_3"]["duration_seconds"] == 0.0
    assert durations["R_mid_1"]["finished_at"] == utc("2025-03-02T00:00:30")

    (overall,) = rows_as_dicts(edge_con, "select * from analytics.overall_stats")
    # Without a status history a finish is exact when modified moved, unknown when it did not (R_mid_3 alone).
    terminal = overall["terminal_runs"]
    assert (overall["unknown_duration_runs"], overall["observed_duration_runs"]) == (1, 0)
    assert overall["exact_duration_runs"] == terminal - 1
    assert overall["exact_duration_share"] == (terminal - 1) / terminal
    assert (overall["unknown_duration_share"], overall["observed_duration_share"]) == (1 / terminal, 0.0)
    assert overall["observed_min_duration_seconds"] is None and overall["observed_avg_bracket_seconds"] is None
    assert overall["unchanged_a_day_runs"] == 0  # no load has seen an open run yet


def test_space_stats_and_runs_by_status_count_the_listed_runs(edge_con):
    runs = listed(EDGE_RUNS)
    spaces = keyed(edge_con, "analytics.space_stats", "space_token")
    for token in (SPACE_A, SPACE_B):
        group = [row for row in runs if row["space_token"] == token]
        assert_metrics_equal(spaces[token], group_metrics(group), f"space_stats[{token}]")
        assert spaces[token]["collections"] == len({row["collection_ref"] for row in group} - {None})
    statuses = keyed(edge_con, "analytics.runs_by_status", "status")
    assert {status: row["runs"] for status, row in statuses.items()} == {
        status: sum(row["status"] == status for row in runs) for status in {row["status"] for row in runs}
    }
    assert statuses["archived"]["is_terminal"] is False and statuses["archived"]["is_known_status"] is False
    assert statuses[None]["is_terminal"] is False
    assert statuses["partially_completed"]["is_terminal"] is True
    assert sum(row["share_of_runs"] for row in statuses.values()) == pytest.approx(1.0)


def world_runs() -> tuple[list[dict], list[dict]]:
    """Runs from the simulator after two nights, with a space serving only six fields, an unknown status, and a
    run the API stopped listing (kept in unpod.runs with deleted_at, absent from the truth)."""
    world = World(seed=5, spaces=4, runs=500, skew=True)
    tokens = world.space_tokens()
    world.set_shape(tokens[-1], "six")
    world.advance(hours=24, seed=6)
    world.add_raw_run(tokens[0], {
        "run_id": "R" + "ab" * 16, "collection_ref": "collection_data_new", "run_mode": "prod",
        "status": "archived", "created": world.now.strftime("%Y-%m-%dT%H:%M:%S"),
        "modified": world.now.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    world.advance(hours=24, seed=7)
    gone_id = next(iter(world.truth()))
    gone = rows_from_truth({gone_id: world.truth()[gone_id]})[0]
    gone["deleted_at"] = utc("2026-12-01T00:00:00")
    world.delete_run(gone_id)
    truth_rows = rows_from_truth(world.truth())
    return truth_rows, truth_rows + [gone]


def test_marts_match_the_simulator_ground_truth(tmp_path):
    truth_rows, stored_rows = world_runs()
    with create_runs_db(tmp_path / "world.duckdb", stored_rows) as con:
        build_models(con)
        assert_all_metrics(con, truth_rows)
        (stored,) = con.execute("select count(*) from analytics.run_durations").fetchone()
        assert stored == len(truth_rows)


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every analytics relation, rows sorted, with timestamps as instants (comparable across time zones)."""
    relations = [name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'analytics' order by 1"
    ).fetchall()]
    return {name: sorted(con.execute(f"select * from analytics.{name}").fetchall(), key=repr) for name in relations}


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Tokyo"])
def test_results_do_not_depend_on_the_session_time_zone(tmp_path, zone):
    with create_runs_db(tmp_path / "utc.duckdb", EDGE_RUNS) as con:
        con.execute("set TimeZone = 'UTC'")
        build_models(con)
        expected = snapshot(con)
    with create_runs_db(tmp_path / "zoned.duckdb", EDGE_RUNS) as con:
        con.execute(f"set TimeZone = '{zone}'")
        build_models(con)
        built_in_zone = snapshot(con)
        con.execute("set TimeZone = 'UTC'")
        read_in_utc = snapshot(con)
    assert built_in_zone == expected
    assert read_in_utc == expected


def test_every_documented_column_exists_and_every_column_is_documented(edge_con):
    for model in load_models():
        cursor = edge_con.execute(
            "select column_name, comment from duckdb_columns() where schema_name = ? and table_name = ? "
            "order by column_index",
            [SCHEMA, model.name],
        )
        columns = cursor.fetchall()
        assert [name for name, _ in columns] == list(model.columns), model.relation
        assert all(comment for _, comment in columns), f"{model.relation}: a column has no comment"


def test_spec_columns_come_first_with_their_exact_names():
    spec = {
        "run_durations": ["run_id", "space_token", "collection_ref", "run_mode", "status", "created", "finished_at",
                          "duration_seconds"],
        "collection_stats": ["collection_ref", "total_runs", "completed_runs", "failed_runs",
                             "partially_completed_runs", "open_runs", "terminal_runs", "failure_rate",
                             "avg_duration_seconds", "p50_duration_seconds", "p95_duration_seconds", "first_created",
                             "last_created"],
        "daily_run_stats": ["day", "collection_ref", "runs", "completed_runs", "failed_runs",
                            "partially_completed_runs", "failure_rate", "p50_duration_seconds"],
    }
    models = {model.name: model for model in load_models()}
    for name, columns in spec.items():
        assert list(models[name].columns)[: len(columns)] == columns, name
        assert models[name].materialized == "table", name


def test_documentation_names_every_model_and_column():
    text = describe_models()
    readme = (SQL_DIR / "README.md").read_text()
    for model in load_models():
        assert model.relation in text and model.relation in readme, model.relation
        assert all(column in text for column in model.columns)
    for check in (SQL_DIR / "checks").glob("*.sql"):
        assert check.stem in readme, check.stem


def test_each_model_file_opens_with_its_grain():
    for model in load_models():
        first_line = model.path.read_text().splitlines()[0]
        assert first_line.lower().startswith("-- one row per"), model.path


def test_missing_optional_sources_give_empty_models_and_leave_unpod_alone(tmp_path):
    with create_runs_db(tmp_path / "runs_only.duckdb", EDGE_RUNS[:3]) as con:
        built = build_models(con)
        assert "analytics.load_history" in built
        assert con.execute("select count(*) from analytics.load_history").fetchone() == (0,)
        assert con.execute("select count(*) from analytics.stg_spaces").fetchone() == (0,)
        assert con.execute("select count(*) from analytics.space_stats where space_name is null").fetchone() == (1,)
        unpod_tables = con.execute("select table_name from duckdb_tables() where schema_name = 'unpod'").fetchall()
        assert unpod_tables == [("runs",)]


def test_optional_sources_feed_the_models_when_present(tmp_path):
    with create_runs_db(tmp_path / "full.duckdb", EDGE_RUNS) as con:
        add_spaces(con, [{"token": SPACE_A, "name": "Sales Calls", "organization__name": "Acme"}])
        add_load_history(con, [{"load_id": "1.5", "started_at": utc("2025-03-08T02:00:00"),
                                "finished_at": utc("2025-03-08T02:00:30"), "outcome": "ok", "full_scan": True,
                                "runs_new": 30, "duration_seconds": 30.0}])
        build_models(con)
        spaces = keyed(con, "analytics.space_stats", "space_token")
        assert spaces[SPACE_A]["space_name"] == "Sales Calls"
        assert spaces[SPACE_A]["organization_name"] == "Acme"
        assert spaces[SPACE_B]["space_name"] is None
        (load,) = rows_as_dicts(con, "select * from analytics.load_history")
        assert (load["load_id"], load["outcome"], load["full_scan"], load["runs_new"]) == ("1.5", "ok", True, 30)
        assert load["spaces_ok"] is None


def test_a_failing_model_leaves_the_previous_build_intact(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    with create_runs_db(tmp_path / "db.duckdb", EDGE_RUNS) as con:
        build_models(con, sql_dir)
        # stg_runs and int_runs are views, so they show the new run at once; the tables must still hold the previous
        # build.
        views = {"stg_runs", "int_runs"}
        before = {name: rows for name, rows in snapshot(con).items() if name not in views}
        con.execute("insert into unpod.runs (run_id, status, created, modified) values "
                    "('R_new', 'completed', '2025-03-09 00:00:00+00', '2025-03-09 00:01:00+00')")
        (sql_dir / "marts" / "zz_broken.sql").write_text(
            "-- One row per nothing.\n-- columns:\n--   x: broken on purpose.\nselect * from analytics.no_such_model\n"
        )
        with pytest.raises(ModelBuildError, match=r"analytics\.zz_broken \(sql/marts/zz_broken\.sql\)"):
            build_models(con, sql_dir)
        after = snapshot(con)
        assert "zz_broken" not in after
        assert {name: rows for name, rows in after.items() if name not in views} == before
        (sql_dir / "marts" / "zz_broken.sql").unlink()
        build_models(con, sql_dir)
        assert con.execute("select count(*) from analytics.run_durations where run_id = 'R_new'").fetchone() == (1,)


def test_building_without_runs_table_is_a_clear_error(tmp_path):
    with duckdb.connect(str(tmp_path / "empty.duckdb")) as con:
        with pytest.raises(ModelBuildError, match="unpod.runs does not exist"):
            build_models(con)


def test_an_empty_runs_table_builds_empty_marts(tmp_path):
    with create_runs_db(tmp_path / "empty.duckdb", []) as con:
        build_models(con)
        for relation in ("collection_stats", "daily_run_stats", "run_durations", "space_stats", "runs_by_status"):
            assert con.execute(f"select count(*) from analytics.{relation}").fetchone() == (0,), relation


def test_runs_table_without_some_columns_still_builds(tmp_path):
    """dlt creates no column for a field the API never sent: the staging contract fills it with NULL."""
    with duckdb.connect(str(tmp_path / "narrow.duckdb")) as con:
        con.execute("create schema unpod")
        con.execute("create table unpod.runs (run_id varchar, space_token varchar, status varchar, "
                    "created timestamptz, modified timestamptz)")
        con.execute("insert into unpod.runs values ('R1', 'S', 'failed', '2025-01-01 00:00:00+00', "
                    "'2025-01-01 00:00:09+00')")
        build_models(con)
        (row,) = rows_as_dicts(con, "select * from analytics.collection_stats")
        assert (row["collection_ref"], row["failure_rate"], row["p50_duration_seconds"]) == (None, 1.0, 9.0)


def test_rebuilding_replaces_the_models_with_the_current_runs(edge_con):
    before = edge_con.execute("select count(*) from analytics.run_durations").fetchone()[0]
    edge_con.execute("update unpod.runs set deleted_at = now() where run_id = 'R_single'")
    build_models(edge_con)
    assert edge_con.execute("select count(*) from analytics.run_durations").fetchone()[0] == before - 1
    assert "single" not in keyed(edge_con, "analytics.collection_stats", "collection_ref")


def _mart(sql_dir: Path, name: str, query: str) -> None:
    (sql_dir / "marts" / f"{name}.sql").write_text(f"-- One row per thing.\n-- columns:\n--   x: a value.\n{query}\n")


def test_the_build_order_follows_what_each_model_reads(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    _mart(sql_dir, "aa_reads_zz", "select x from analytics.zz_read -- not analytics.space_stats: a comment")
    _mart(sql_dir, "zz_read", "select count(*) as x from analytics.run_durations")
    # A quoted name is a read; a name in a string is not, nor a CTE that shares a model's name.
    _mart(sql_dir, "ab_reads_zy", "with open_runs as (select x from \"analytics\".\"zy_read\") "
                                  "select x, 'analytics.space_stats' as label from open_runs")
    _mart(sql_dir, "zy_read", "select count(*) as x from analytics.run_durations")
    order = [model.name for model in load_models(sql_dir)]
    assert order.index("run_durations") < order.index("zz_read") < order.index("aa_reads_zz")
    assert order.index("aa_reads_zz") < order.index("space_stats")  # a name in a comment is not a read
    assert order.index("zy_read") < order.index("ab_reads_zy") < order.index("open_runs") < order.index("space_stats")
    staging = [name for name in order if name.startswith("stg_")]
    assert order[:len(staging)] == staging  # the staging layer first
    assert order.index("stg_runs") < order.index("int_runs") < order.index("int_api_clock")  # after what they read
    with create_runs_db(tmp_path / "db.duckdb", EDGE_RUNS) as con:
        assert build_models(con, sql_dir)[-len(order):] == [f"analytics.{name}" for name in order]


def test_models_that_read_each_other_in_a_cycle_fail_by_name(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    _mart(sql_dir, "aa_cycle", "select x from analytics.bb_cycle")
    _mart(sql_dir, "bb_cycle", "select x from analytics.aa_cycle")
    with pytest.raises(ValueError, match=r"cycle: analytics\.aa_cycle -> analytics\.bb_cycle -> analytics\.aa_cycle"):
        load_models(sql_dir)


def test_a_model_whose_query_does_not_parse_fails_by_name(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    _mart(sql_dir, "aa_broken", "select (x from analytics.run_durations")
    with pytest.raises(ValueError, match=r"aa_broken\.sql: cannot tell which models it reads.*line 1, column \d+"):
        load_models(sql_dir)


def test_a_staging_model_that_reads_a_mart_is_refused(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "staging" / "stg_bad.sql").write_text(
        "-- One row per thing.\n-- columns:\n--   x: a value.\nselect count(*) as x from analytics.space_stats\n")
    with pytest.raises(ValueError, match=r"stg_bad\.sql: a model in staging/ reads none in intermediate/ or marts/, "
                                         r"and this one reads analytics\.space_stats"):
        load_models(sql_dir)


def test_an_intermediate_model_that_reads_a_mart_is_refused(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "intermediate" / "int_bad.sql").write_text(
        "-- One row per thing.\n-- columns:\n--   x: a value.\nselect count(*) as x from analytics.run_durations\n")
    with pytest.raises(ValueError, match=r"int_bad\.sql: a model in intermediate/ reads none in marts/, "
                                         r"and this one reads analytics\.run_durations"):
        load_models(sql_dir)


def test_staging_only_renames_and_types_the_runs():
    """What a run's status and timestamps mean is int_runs' alone: stg_runs holds the loader's columns, typed."""
    models = {model.name: model for model in load_models()}
    assert list(models["stg_runs"].columns) == ["run_id", "space_token", "collection_ref", "run_mode", "status",
                                                "batch_count", "created", "modified", "space_id", "user_id",
                                                "thread_id"]
    definitions = ["is_terminal", "is_failed", "is_known_status", "day", "finished_at", "duration_seconds"]
    assert list(models["int_runs"].columns) == list(models["stg_runs"].columns) + definitions
    assert models["int_runs"].layer == "intermediate"


def test_the_status_history_is_typed_once_in_staging_and_never_copied(tmp_path):
    """stg_status_history is ephemeral: the models over the history run its query in place, and no relation of it
    (a second copy of the history, or a view to keep in step) is built."""
    models = {model.name: model for model in load_models()}
    assert "stg_status_history" not in models and "stg_load_history" not in models
    for name in ("int_run_finishes", "int_status_spells"):
        assert "unpod.run_status_history" in models[name].query, name
        assert "analytics.stg_status_history" not in models[name].query, name
        assert models[name].optional_sources == ("unpod.run_status_history",), name
    assert models["load_history"].optional_sources == ("unpod.load_history",)
    typed_in = sorted(path.name for path in SQL_DIR.rglob("*.sql")
                      if "unpod.run_status_history" in split_header(path.read_text())[1])
    assert typed_in == ["stg_status_history.sql"]
    with create_runs_db(tmp_path / "db.duckdb", EDGE_RUNS) as con:
        built = build_models(con)
        relations = {name for (name,) in con.execute("select table_name from information_schema.tables "
                                                    "where table_schema = 'analytics'").fetchall()}
    assert "analytics.int_run_finishes" in built and "stg_status_history" not in relations
    assert not [name for name in built if name.endswith(("stg_status_history", "stg_load_history"))]


def test_only_staging_reads_the_loader_tables(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "intermediate" / "int_bad.sql").write_text(
        "-- One row per thing.\n-- columns:\n--   x: a value.\nselect count(*) as x from unpod.run_status_history\n")
    with pytest.raises(ValueError, match=r"int_bad\.sql: only staging/ reads the loader's tables, and this "
                                         r"intermediate model reads unpod\.run_status_history"):
        load_models(sql_dir)


def test_a_view_over_an_ephemeral_model_with_an_optional_source_is_refused(tmp_path):
    """The view would read the stand-in of the missing source, which the build drops."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "intermediate" / "int_history_view.sql").write_text(
        "-- One row per version.\n-- columns:\n--   run_id: the run.\nselect run_id from analytics.stg_status_history\n")
    with pytest.raises(ValueError, match=r"int_history_view\.sql: a model over an optional source must be "
                                         r"materialized as a table \(analytics\.stg_status_history reads "
                                         r"unpod\.run_status_history\)"):
        load_models(sql_dir)


def test_an_ephemeral_model_that_reads_another_is_refused(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "staging" / "stg_nested.sql").write_text(
        "-- One row per version.\n-- materialized: ephemeral\n-- columns:\n--   run_id: the run.\n"
        "select run_id from analytics.stg_status_history\n")
    with pytest.raises(ValueError, match=r"stg_nested\.sql: an ephemeral model reads no other ephemeral model"):
        load_models(sql_dir)


def test_a_full_build_drops_what_an_earlier_release_built(tmp_path):
    with create_runs_db(tmp_path / "db.duckdb", EDGE_RUNS) as con:
        con.execute("create schema analytics")
        con.execute("create table analytics.stg_api_clock as select now() as as_of")
        con.execute("create table analytics.stg_run_finishes as select 'R1' as run_id")
        con.execute("create view analytics.stg_status_spells as select 'R1' as run_id")
        build_models(con)
        tables = {name for (name,) in con.execute("select table_name from information_schema.tables "
                                                 "where table_schema = 'analytics'").fetchall()}
        assert "stg_api_clock" not in tables and "int_api_clock" in tables
        assert not {"stg_run_finishes", "stg_status_spells"} & tables
        assert {"int_run_finishes", "int_status_spells"} <= tables


def test_an_incremental_mart_without_grouping_sets_is_refused(tmp_path):
    """A keyed mart is refreshed set by set of its grouping sets, its rows told apart by grain: say both."""
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "marts" / "by_collection.sql").write_text(
        "-- One row per collection.\n-- incremental key: collection_ref\n-- columns:\n--   collection_ref: it.\n"
        "--   runs: its runs.\nselect collection_ref, count(*) as runs from analytics.run_durations group by 1\n")
    with pytest.raises(ValueError, match=r"by_collection\.sql: an incremental mart groups its rows by one "
                                         r"'group by grouping sets \(\.\.\.\)', and names each row's set in a "
                                         r"column grain"):
        load_models(sql_dir)
