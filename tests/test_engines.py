"""The correctness suite on DuckLake and PostgreSQL: the same nights as the DuckDB file, compared with it.

Each test loads the same sandbox world into the DuckDB file (the oracle, itself checked against the world's truth)
and into the other engine in the same night (the sandbox's clock moves only with ``advance``, so both see the same
answers and the same ``Date``), then compares ``unpod.runs`` and every ``analytics`` relation, row for row. The
engine's loads are ``unpod-runs load`` processes; the oracle's run in the test's process, its first night of the
default world copied from the night-one template.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import duckdb
import psycopg2
import pytest

from conftest import DEFAULT_WORLD, REPO, NightOne, assert_matches_truth, make_env, point_dlt_at
from test_nightly_job import HoldingSandbox, finish
from unpod_runs.analytics.models import SQL_DIR, build_models
from unpod_runs.analytics.portable import table_columns
from unpod_runs.pipeline.engines import Engine, EngineConfigError, for_destination
from unpod_runs.pipeline.load import KILL_AT_PHASE_ENV, run_load
from unpod_runs.sandbox.server import FAULT_KINDS, FaultPlan, SandboxServer
from unpod_runs.sandbox.world import World

ENGINES = ("postgres", "ducklake")
# Columns of the runs that the API decides (a full scan sets deleted_at to its own clock); the rest are dlt's own.
RUN_COLUMNS = ("run_id, space_token, collection_ref, run_mode, status, batch_count, created, modified, "
               "deleted_at is null as is_listed")
# What a load did, not when: the same on both engines.
LOAD_COLUMNS = "outcome, full_scan, spaces_ok, spaces_failed, failed_spaces, runs_new, runs_updated, runs_rejected"
# Relations that say how the models were built, not what the data is: a refresh on the file, a full build elsewhere.
NOT_DATA = {"model_build_state"}
# The columns compared where a relation also says when (wall clock) and by which load id.
COMPARED = {"load_history": LOAD_COLUMNS}


class Nights:
    """One world served on loopback, loaded every night into the DuckDB file and into the engine under test."""

    def __init__(self, tmp_path: Path, world: World, server: SandboxServer, destination: str, engine_env: dict,
                 monkeypatch: pytest.MonkeyPatch, night_one: NightOne | None = None):
        """``night_one``: the world is ``DEFAULT_WORLD``, and the file's first night is copied from its template."""
        self.world, self.server, self.destination = world, server, destination
        (tmp_path / "file").mkdir()
        (tmp_path / "engine").mkdir()
        self.file_db = tmp_path / "file" / "unpod_runs.duckdb"
        self.engine_db = tmp_path / "engine" / "unpod_runs.duckdb"
        self.env = {**make_env(tmp_path, world, server, page_size="10"), **engine_env}
        self._night_one = night_one
        # This process loads the file and reads the engine: it reads the same settings as the engine's loads.
        point_dlt_at(self.env, monkeypatch)
        for key, value in engine_env.items():
            monkeypatch.setenv(key, value)

    def load_engine(self, extra_env: dict | None = None, *options: str) -> subprocess.Popen:
        """The engine's load, as the scheduler runs it: ``unpod-runs load`` in its own process."""
        return subprocess.Popen(
            [sys.executable, "-m", "unpod_runs.cli", "load", *options, "--db", str(self.engine_db), "--destination",
             self.destination], env={**self.env, **(extra_env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=self.engine_db.parent,
        )

    def load_file(self, full_scan: bool = False) -> None:
        """The oracle's load, in this process: the file's loads are not what these tests are about (the engine's
        are, each in its own process); the first of them from the template when there is one."""
        if self._night_one is not None:
            self._night_one.copy_into(self.file_db, Path(self.env["DLT_DATA_DIR"]), DEFAULT_WORLD, page_size="10")
            self._night_one = None
            return
        summary = run_load(self.file_db, full_scan=full_scan, report_path=self.file_db.with_name("report.html"))
        kind = "full scan" if full_scan else "nightly"
        assert summary.exit_code == 0 and f"unpod-runs load: {kind}" in summary.render(), summary.render()

    def night(self) -> None:
        """Load tonight into both, each load exiting 0."""
        self.load_file()
        stdout, stderr = self.load_engine().communicate(timeout=300)
        assert "unpod-runs load: nightly" in stdout, ("engine", stderr)

    def engine(self) -> Engine:
        return for_destination(self.destination, self.engine_db)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "unpod_runs.cli", *args, "--db", str(self.engine_db), "--destination",
             self.destination], env=self.env, capture_output=True, text=True, timeout=300, cwd=self.engine_db.parent,
        )

    def assert_same_as_the_file(self, same_loads: bool = True) -> None:
        """The engine holds what the file holds, and the file holds the world's truth.

        ``same_loads``: both ran the same loads (a killed load writes no history row, on either).
        """
        assert_matches_truth(self.file_db, self.world)
        with duckdb.connect(str(self.file_db), read_only=True) as oracle, _reader(self) as reader:
            assert _rows(reader, f"select {RUN_COLUMNS} from unpod.runs") == _rows(
                oracle, f"select {RUN_COLUMNS} from unpod.runs")
            if same_loads:
                assert _rows(reader, f"select {LOAD_COLUMNS} from unpod.load_history") == _rows(
                    oracle, f"select {LOAD_COLUMNS} from unpod.load_history")
            relations = _analytics(oracle)
            assert _analytics(reader) == relations
            for name in sorted(relations - NOT_DATA - (set() if same_loads else {"load_history"})):
                # By the file's column names: a PostgreSQL table reshaped after a model file changed keeps its
                # columns' places and adds the new ones last.
                query = f"select {COMPARED.get(name) or _columns(oracle, name)} from analytics.{name}"
                expected = _rows(oracle, query)
                assert expected, name
                _assert_rows_equal(_rows(reader, query), expected, name)


def _report_text(db: Path) -> str:
    """What the report beside ``db`` says, without its markup, charts, and the wall-clock times of its load."""
    page = (db.with_name("report.html")).read_text()
    page = re.sub(r"<(style|svg|script)\b.*?</\1>|<img[^>]*>", " ", page, flags=re.S)
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
    text = re.sub(r"(generated|latest load) \d{4}-\d\d-\d\d \d\d:\d\d UTC", r"\1 (when)", text)
    assert "Runs by status" in text
    return text


def _reader(nights: Nights):
    return nights.engine().reader()


def _analytics(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema = 'analytics'").fetchall()}


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    return ", ".join(f'"{name}"' for name in table_columns(con, "analytics", relation))


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    con.execute("set TimeZone = 'UTC'")
    return sorted(con.execute(query).fetchall(), key=lambda row: tuple(_sort_key(value) for value in row))


def _sort_key(value: object) -> tuple:
    if value is None:
        return (0, "")
    if isinstance(value, float):
        return (1, round(value, 6))
    if isinstance(value, (int, datetime, date)):
        return (1, value)
    return (2, str(value))


def _assert_rows_equal(actual: list[tuple], expected: list[tuple], name: str) -> None:
    assert len(actual) == len(expected), name
    for got, want in zip(actual, expected):
        assert len(got) == len(want), name
        for left, right in zip(got, want):
            if isinstance(right, float) and left is not None:
                assert math.isclose(float(left), right, rel_tol=1e-9, abs_tol=1e-9), (name, got, want)
            else:
                assert left == right, (name, got, want)


@pytest.fixture(params=ENGINES)
def destination(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def engine_env(destination: str, request: pytest.FixtureRequest) -> dict:
    if destination == "postgres":
        return {"DESTINATION__POSTGRES__CREDENTIALS": request.getfixturevalue("postgres_url")}
    return {}  # DuckLake's defaults: a SQLite catalog and a data folder beside --db


@pytest.fixture
def nights(tmp_path: Path, destination: str, engine_env: dict, monkeypatch: pytest.MonkeyPatch, night_one: NightOne):
    """Every test of it starts with ``nights.night()``: the file's first night comes from the template."""
    world = World(**DEFAULT_WORLD)
    with SandboxServer(world) as server:
        yield Nights(tmp_path, world, server, destination, engine_env, monkeypatch, night_one)


def test_two_nights_with_silent_finishes_and_a_new_space_of_old_runs(nights: Nights):
    nights.night()
    nights.assert_same_as_the_file()
    changed = nights.world.advance(hours=24, seed=12)
    assert changed["changed"], "the night finishes some open runs"
    nights.world.add_space(runs=25, age_days=90)

    nights.night()

    nights.assert_same_as_the_file()
    status = nights.cli("status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"database {nights.engine().location()}"
    tokens = {line.split()[0] for line in status.stdout.splitlines()[2:-2]}
    assert tokens == set(nights.world.space_tokens())
    assert _report_text(nights.engine_db) == _report_text(nights.file_db)

    models = nights.cli("models")
    assert models.returncode == 0, models.stderr
    nights.assert_same_as_the_file()
    out = nights.engine_db.with_name("export")
    export = nights.cli("export", "--out", str(out))
    assert export.returncode == 0, export.stderr
    with nights.engine().reader() as reader:
        for name in _analytics(reader):
            (rows,) = reader.execute(f"select count(*) from analytics.{name}").fetchone()
            assert duckdb.sql(f"select count(*) from '{out / (name + '.parquet')}'").fetchone()[0] == rows, name


@pytest.mark.parametrize("phase", ["load", "models"])
def test_a_killed_load_loses_nothing_and_the_next_completes_it(nights: Nights, phase: str):
    nights.night()
    nights.world.advance(hours=24, seed=2)
    killed = nights.load_engine({KILL_AT_PHASE_ENV: phase})
    stderr = killed.communicate(timeout=300)[1]
    assert f"event=phase name={phase}" in stderr
    assert killed.returncode == -signal.SIGKILL
    # The file loads this night in one go; the engine gets it from the load after the kill, with the next night.
    nights.load_file()
    nights.world.advance(hours=24, seed=3)

    nights.night()

    nights.assert_same_as_the_file(same_loads=False)


def test_a_full_scan_marks_a_run_the_api_stopped_listing(nights: Nights):
    nights.night()
    gone = next(iter(nights.world.truth()))
    nights.world.delete_run(gone)
    nights.load_file(full_scan=True)
    nights.load_engine({}, "--full-scan").communicate(timeout=300)

    nights.assert_same_as_the_file()
    with nights.engine().reader() as reader:
        assert reader.execute("select deleted_at is not null from unpod.runs where run_id = ?", [gone]).fetchone() == (True,)
        assert reader.execute("select count(*) from analytics.run_durations where run_id = ?", [gone]).fetchone() == (0,)


def test_faults_of_every_kind_are_retried_and_the_result_is_exact(
    tmp_path: Path, destination: str, engine_env: dict, monkeypatch: pytest.MonkeyPatch
):
    world = World(seed=31, spaces=5, runs=[0, 3, 40, 120, 7])
    faults = FaultPlan(seed=31, rate=0.15, kinds=FAULT_KINDS, retry_after_s=0.01, slow_s=0.05)
    with SandboxServer(world, faults=faults) as server:
        nights = Nights(tmp_path, world, server, destination, engine_env, monkeypatch)
        for night, seed in enumerate((40, 41)):
            nights.night()
            nights.assert_same_as_the_file()
            world.advance(hours=24, seed=seed)
        faulted = {record.fault for record in server.requests if record.fault}
    assert len(faulted) >= 3, faulted


def test_a_reader_attached_during_a_load_sees_the_last_committed_night(nights: Nights):
    nights.night()
    query = "select (select count(*) from analytics.run_durations), (select sum(total_runs) from analytics.collection_stats)"
    with nights.engine().reader() as reader:
        (night_one, total), = reader.execute(query).fetchall()
        assert night_one == total
        nights.world.advance(hours=24, seed=12, new_runs=30)
        load = nights.load_engine()
        seen = set()
        while load.poll() is None:
            (runs, total), = reader.execute(query).fetchall()
            assert runs == total, "the marts of one night, never half of one"
            seen.add(runs)
            time.sleep(0.05)
        (runs, total), = reader.execute(query).fetchall()
    assert load.returncode == 0, load.stderr.read()
    assert seen <= {night_one, runs} and runs == night_one + 30
    nights.load_file()
    nights.assert_same_as_the_file()


def test_a_postgresql_reader_keeps_its_snapshot_across_builds_whose_model_files_changed(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, night_one: NightOne
):
    """A reader whose transaction began before a build sees last night's rows in every relation after it commits,
    though the model files changed: the build reshaped its tables in place (columns dropped, added, retyped) and
    refilled them, and replaced only its views. A fresh reader sees the new build, equal to the file's.

    A reader that has read a table holds a lock on it until its transaction ends, which a reshape of that table
    waits for: this one reads, before the builds, only a table whose shape stays.
    """
    before, after = _changed_model_folders(tmp_path)
    world = World(**DEFAULT_WORLD)
    with SandboxServer(world) as server:
        nights = Nights(tmp_path, world, server, "postgres", {"DESTINATION__POSTGRES__CREDENTIALS": postgres_url},
                        monkeypatch, night_one)
        nights.night()
        with nights.engine().writer() as con:
            build_models(con, sql_dir=before)  # adds a view over a column that the build below drops
        with psycopg2.connect(postgres_url) as con:
            last_night = _postgres_relations(con)
        reader = psycopg2.connect(postgres_url)
        reader.set_session(isolation_level="REPEATABLE READ")
        assert _postgres_relations(reader, "collection_stats") == {"collection_stats": last_night["collection_stats"]}
        world.advance(hours=24, seed=12, new_runs=30)

        nights.night()  # sql/ again: the view above is no model of it, the others are reshaped back
        assert _postgres_relations(reader, "collection_stats") == {"collection_stats": last_night["collection_stats"]}
        with nights.engine().writer() as con:
            build_models(con, sql_dir=after)
        with duckdb.connect(str(nights.file_db)) as con:
            build_models(con, sql_dir=after)

        seen = _postgres_relations(reader)
        reader.close()
        assert set(seen) == set(last_night)
        for name, (columns, rows) in last_night.items():
            seen_columns, seen_rows = seen[name]
            kept = [column for column, kind in columns.items() if seen_columns.get(column) == kind]
            assert _projected(seen_rows, seen_columns, kept) == _projected(rows, columns, kept), name
        by_status_columns, by_status_rows = seen["runs_by_status"]
        assert "last_modified" not in by_status_columns and len(by_status_rows) == len(last_night["runs_by_status"][1])
        # Last night's rows have no value in the columns this build added (runs was retyped: dropped and added).
        assert _projected(by_status_rows, by_status_columns, ["runs", "runs_per_space"]) == [(None, None)] * len(
            by_status_rows)
        nights.assert_same_as_the_file()
        with nights.engine().writer() as con:
            build_models(con, sql_dir=after)  # the same files: a refill, by column name into the reshaped tables
        nights.assert_same_as_the_file()


def _changed_model_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two copies of sql/. ``before`` adds the view mart open_statuses, over runs_by_status.last_modified. ``after``
    drops that column from runs_by_status, adds one, makes runs a double, drops int_runs.thread_id (a view), and
    makes open_statuses read the new runs."""
    view = ("-- One row per open status.\n-- The statuses runs wait in, from runs_by_status.\n-- materialized: view\n"
            "-- columns:\n--   status: the status.\n--   runs: runs in it.\n")
    before, after = tmp_path / "sql-before", tmp_path / "sql-after"
    shutil.copytree(SQL_DIR, before)
    (before / "marts" / "open_statuses.sql").write_text(
        view + "--   last_modified: the latest modified among them.\n"
        "select status, runs, last_modified from analytics.runs_by_status where not is_terminal\n")
    shutil.copytree(before, after)
    (after / "marts" / "open_statuses.sql").write_text(
        view + "select status, runs from analytics.runs_by_status where not is_terminal\n")
    _edit(after / "marts" / "runs_by_status.sql",
          ("--   last_modified: the latest modified among these runs.\n", "--   runs_per_space: runs / spaces.\n"),
          ("        runs,\n        cast(runs as double) / sum(runs) over () as share_of_runs,\n",
           "        cast(runs as double) as runs,\n        cast(runs as double) / sum(runs) over () as share_of_runs,\n"
           "        cast(runs as double) / spaces as runs_per_space,\n"),
          ("        last_created,\n        last_modified\n", "        last_created\n"))
    _edit(after / "intermediate" / "int_runs.sql", ("--   thread_id: the thread the run belongs to, if any.\n", ""),
          ("        user_id,\n        thread_id,\n", "        user_id,\n"))
    return before, after


def _edit(path: Path, *replacements: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in replacements:
        assert old in text, (path, old)
        text = text.replace(old, new)
    path.write_text(text)


def _postgres_relations(con, *names: str) -> dict[str, tuple[dict[str, int], list[tuple]]]:
    """Each ``analytics`` relation (or those named) as a PostgreSQL reader sees it: its columns' types, its rows."""
    with con.cursor() as cursor:
        if not names:
            cursor.execute("select table_name from information_schema.tables where table_schema = 'analytics'")
            names = tuple(name for (name,) in cursor.fetchall())
        seen = {}
        for name in names:
            cursor.execute(f"select * from analytics.{name}")
            seen[name] = ({column.name: column.type_code for column in cursor.description}, cursor.fetchall())
    return seen


def _projected(rows: list[tuple], columns: dict[str, int], names: list[str]) -> list[tuple]:
    places = [list(columns).index(name) for name in names]
    return sorted((tuple(row[place] for place in places) for row in rows),
                  key=lambda row: tuple(_sort_key(value) for value in row))


def test_ducklake_with_a_postgresql_catalog(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
                                           night_one: NightOne):
    world = World(**DEFAULT_WORLD)
    env = {"DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG": postgres_url,
           "DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL": str(tmp_path / "lake-data")}
    with SandboxServer(world) as server:
        nights = Nights(tmp_path, world, server, "ducklake", env, monkeypatch, night_one)
        nights.night()
        world.advance(hours=24, seed=12)
        nights.night()
        nights.assert_same_as_the_file()
    assert list((tmp_path / "lake-data").rglob("*.parquet")), "the data is in the configured folder"
    assert not (nights.engine_db.with_name("unpod_runs.ducklake.sqlite")).exists()


@pytest.mark.parametrize("shared", ["postgres", "ducklake"])
def test_loads_from_two_hosts_into_one_postgresql_exclude_each_other(
    tmp_path: Path, postgres_url: str, shared: str, monkeypatch: pytest.MonkeyPatch
):
    """Two hosts (two ``--db``, so two local locks) load into one PostgreSQL, or one DuckLake catalog on it: the
    second finds the first's advisory lock taken and exits 3, naming it; once the first is done, a load runs."""
    secret = "never-printed-pw"  # the test server trusts its socket and never asks for it
    url = postgres_url.replace("postgres:@", f"postgres:{secret}@")
    assert secret in url
    if shared == "postgres":
        engine_env = {"DESTINATION__POSTGRES__CREDENTIALS": url}
    else:
        engine_env = {"DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG": url,
                      "DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE__BUCKET_URL": str(tmp_path / "lake-data")}
    for key, value in engine_env.items():  # this process reads the engine too
        monkeypatch.setenv(key, value)
    hosts = [tmp_path / host / "unpod_runs.duckdb" for host in ("host-a", "host-b")]
    world = World(seed=11, spaces=3, runs=[0, 1, 57])
    with HoldingSandbox(world) as server:
        env = {**make_env(tmp_path, world, server, page_size="10"), **engine_env}

        def load(db: Path) -> subprocess.Popen:
            db.parent.mkdir(exist_ok=True)
            return subprocess.Popen(
                [sys.executable, "-m", "unpod_runs.cli", "load", "--db", str(db), "--destination", shared], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=db.parent)

        server.hold_runs_after(0)  # the first load holds its locks, waiting for its first page
        first = load(hosts[0])
        assert server.holding.wait(timeout=120), "the first load never asked for a page"
        code, stdout, stderr = finish(load(hosts[1]))

        assert code == 3, stderr
        location = for_destination(shared, hosts[1]).location()
        assert f"unpod-runs: {location}" in stderr
        assert f"is being written by another command (unpod-runs load pid {first.pid} on " in stderr
        server.release()
        first_code, first_stdout, first_stderr = finish(first)
        assert first_code == 0, first_stderr
        code, later_stdout, later_stderr = finish(load(hosts[1]))
        assert code == 0, later_stderr
    assert secret not in stdout + stderr + first_stdout + first_stderr + later_stdout + later_stderr
    with for_destination(shared, hosts[1]).reader() as reader:
        stored = reader.execute("select run_id, count(*) from unpod.runs where deleted_at is null group by run_id").fetchall()
        outcomes = reader.execute("select outcome from unpod.load_history").fetchall()
    assert dict(stored) == {run_id: 1 for run_id in world.truth()}
    assert outcomes == [("ok",), ("ok",)], "the refused load wrote nothing"


def test_a_ducklake_catalog_readers_cannot_share_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG", f"duckdb:///{tmp_path / 'catalog.duckdb'}")
    with pytest.raises(EngineConfigError, match="must be sqlite:///PATH or postgres://"):
        for_destination("ducklake", tmp_path / "unpod_runs.duckdb").destination()
    assert not (tmp_path / "catalog.duckdb").exists()


def test_the_commands_need_the_engine_configured_and_say_which_key(tmp_path: Path):
    for command in ("status", "export", "models"):
        result = subprocess.run(
            [sys.executable, "-m", "unpod_runs.cli", command, "--db", str(tmp_path / "x.duckdb"), "--destination",
             "postgres"], env={"PYTHONPATH": str(REPO / "pipelines"), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )
        assert result.returncode == 2, (command, result.stderr)
        assert "DESTINATION__POSTGRES__CREDENTIALS" in result.stderr, command
