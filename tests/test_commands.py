"""The commands a person runs, each in its own process against the sandbox, checked by what they print and store."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timezone
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, LoadEnv, as_utc, assert_matches_truth, stored_runs
from unpod_runs.demo import DEMO_RUNS, DEMO_SEED, DEMO_SPACES
from unpod_runs.sandbox.world import World

TERMINAL = ("completed", "failed", "partially_completed")


def rows(db: Path, query: str) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute(query)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def open_runs(world: World, token: str) -> int:
    return sum(run.get("status") not in TERMINAL for run in world.runs(token))


def test_two_nights_leave_one_history_row_each_and_the_status_of_every_space(load_env: LoadEnv):
    world, server = load_env.world, load_env.server
    first = load_env.cli("load")
    assert first.returncode == 0, first.stderr
    first_requests, first_runs = server.count(), len(world.truth())
    night = world.advance(hours=24, seed=12)
    server.reset_counts()

    second = load_env.cli("load")

    assert second.returncode == 0, second.stderr
    history = rows(load_env.db, "select * from unpod.load_history order by load_id")
    assert [(load["outcome"], load["full_scan"], load["spaces_ok"], load["spaces_failed"], load["runs_rejected"],
             load["retries"]) for load in history] == [("ok", False, 3, 0, 0, 0)] * 2
    assert [load["runs_new"] for load in history] == [first_runs, len(night["new"])]
    assert [load["requests"] for load in history] == [first_requests, server.count()]
    assert history[1]["runs_updated"] == len(night["changed"])
    for load in history:
        assert load["started_at"] < load["finished_at"]
        assert load["duration_seconds"] == (load["finished_at"] - load["started_at"]).total_seconds()
    assert history[0]["finished_at"] <= history[1]["started_at"]
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        assert con.execute("select max(_dlt_load_id) from unpod.runs").fetchone()[0] == history[1]["load_id"]

    spaces = {space["space_token"]: space for space in rows(load_env.db, "select * from unpod.space_status")}
    assert set(spaces) == set(world.space_tokens())
    for token, space in spaces.items():
        assert (space["last_outcome"], space["last_error"]) == ("ok", None), token
        assert space["last_success_at"] == space["last_attempt_at"] == history[1]["started_at"], token
        assert space["runs_listed"] == len(world.runs(token)), token
        assert space["open_runs_tracked"] == open_runs(world, token), token
        assert space["last_requests"] == server.count(space=token), token

    status = load_env.cli("status")

    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"database {load_env.db}"
    assert lines[1].split()[:4] == ["space", "last", "success", "(UTC)"]
    success = history[1]["started_at"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    by_token = {line.split()[0]: line.split() for line in lines[2:2 + len(spaces)]}
    assert set(by_token) == set(world.space_tokens())
    for token, fields in by_token.items():
        listed = len(world.runs(token))
        assert fields[1:] == [*success.split(), str(listed), str(open_runs(world, token)), str(listed),
                              str(open_runs(world, token)), spaces[token]["last_mode"],
                              str(spaces[token]["last_requests"])], token
    finished = history[1]["finished_at"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    assert lines[-2] == f"last load {finished} UTC: ok (3 spaces ok, 0 failed)"
    newest_created = max(as_utc(run["created"]) for run in world.truth().values()).strftime("%Y-%m-%d %H:%M:%S")
    newest_modified = max(as_utc(run["modified"]) for run in world.truth().values()).strftime("%Y-%m-%d %H:%M:%S")
    assert lines[-1] == f"newest run created {newest_created}, newest modified {newest_modified} (UTC)"


def test_load_of_one_space_reads_and_stores_only_that_space(load_env: LoadEnv):
    world, server = load_env.world, load_env.server
    token = max(world.space_tokens(), key=lambda space: len(world.runs(space)))

    result = load_env.cli("load", "--space", token)

    assert result.returncode == 0, result.stderr
    assert_matches_truth(load_env.db, world, spaces={token})
    assert {row["space_token"] for row in stored_runs(load_env.db).values()} == {token}
    assert server.count("spaces") == 0, "named spaces need no discovery"
    assert {record.space_token for record in server.requests if record.kind != "admin"} == {token}
    assert [space["space_token"] for space in rows(load_env.db, "select * from unpod.space_status")] == [token]
    assert [(load["spaces_ok"], load["runs_new"]) for load in rows(load_env.db, "select * from unpod.load_history")] \
        == [(1, len(world.runs(token)))]

    everything = load_env.cli("load")

    assert everything.returncode == 0, everything.stderr
    assert_matches_truth(load_env.db, world)


@pytest.mark.usefixtures("after_night_one")
def test_models_rebuilds_and_publishes_the_analytics_of_what_is_stored(load_env: LoadEnv):
    before = rows(load_env.db, "select * from analytics.space_stats order by space_token")
    with duckdb.connect(str(load_env.db)) as con:
        # What the command must rebuild: a model gone from the published file.
        con.execute("drop table analytics.space_stats")

    result = load_env.cli("models")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"models built and checked in {load_env.db}"
    assert rows(load_env.db, "select * from analytics.space_stats order by space_token") == before
    counted = {row["space_token"]: row["runs"] for row in rows(
        load_env.db, "select space_token, count(*) as runs from unpod.runs group by space_token")}
    assert {row["space_token"]: row["total_runs"] for row in before} == counted
    assert len(rows(load_env.db, "select * from unpod.load_history")) == 1, "models is not a load"


def test_models_without_a_database_is_one_clear_line(load_env: LoadEnv):
    result = load_env.cli("models")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"unpod-runs: no database at {load_env.db}: run `unpod-runs load` first"]
    assert not load_env.db.exists()


def test_demo_loads_two_nights_of_its_own_sandbox_and_writes_only_beside_its_database(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SOURCES__", "DLT_", "RUNTIME__"))}
    env["PYTHONPATH"] = str(REPO / "pipelines")
    db = tmp_path / "demo" / "unpod_runs.duckdb"

    result = subprocess.run([sys.executable, "-m", "unpod_runs.cli", "demo", "--db", str(db)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    world = World(seed=DEMO_SEED, spaces=DEMO_SPACES, runs=DEMO_RUNS, skew=True)
    night = world.advance(hours=24, seed=DEMO_SEED + 1)
    assert_matches_truth(db, world)
    out = result.stdout
    assert f"sandbox serving {DEMO_SPACES} spaces, {DEMO_RUNS} runs at http://127.0.0.1:" in out
    assert f"a day passes: {len(night['new'])} new runs, {len(night['changed'])} runs change status" in out
    assert f"spaces   {DEMO_SPACES} loaded ({DEMO_SPACES} read in full), 0 failed" in out.split("night 2")[0]
    assert f"spaces   {DEMO_SPACES} loaded (0 read in full), 0 failed" in out.split("night 2")[1]
    assert f"{len(night['new'])} new," in out.split("night 2")[1]
    assert "last load " in out and f"ok ({DEMO_SPACES} spaces ok, 0 failed)" in out
    assert f"report    {db.parent / 'report.html'}" in out
    assert (db.parent / "report.html").stat().st_size > 0
    assert [load["outcome"] for load in rows(db, "select outcome from unpod.load_history")] == ["ok", "ok"]
    assert not (tmp_path / "data").exists(), "the demo never writes the production database"
