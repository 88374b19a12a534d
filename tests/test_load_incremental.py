"""Loads against the sandbox over real HTTP, night after night, compared run by run with its ground truth."""

from __future__ import annotations

import logging
import math
import shutil

import duckdb
import pytest

from conftest import LoadEnv, as_utc, assert_matches_truth, stored_runs
from unpod_runs.pipeline.load import release_memory, run_load
from unpod_runs.sandbox.server import FaultPlan, SandboxServer
from unpod_runs.sandbox.world import World
from unpod_runs.analytics.status import render_status
from unpod_runs.pipeline.workspace import WRITER_CONFIG, Workspace

PAGE_SIZE = 10
TERMINAL = ("completed", "failed", "partially_completed")


def pages(runs: int) -> int:
    return max(1, math.ceil(runs / PAGE_SIZE))


def test_first_load_of_empty_single_exact_and_many_page_spaces(load_env: LoadEnv):
    world = load_env.world
    tokens = world.space_tokens()
    exact = world.add_space(runs=3 * PAGE_SIZE)
    many = world.add_space(runs=25 * PAGE_SIZE + 3)

    summary = run_load(load_env.db)

    assert summary.exit_code == 0, summary.render()
    assert_matches_truth(load_env.db, world)
    assert len(stored_runs(load_env.db)) == len(world.truth())
    for token in [*tokens, exact, many]:
        # Every page once, and no empty page past an exact multiple: the live count says where the end is.
        # Adjacent pages after the first are read in wider windows, so there are fewer requests than pages.
        assert _runs_asked_for(load_env.server, token) == pages(len(world.runs(token))) * PAGE_SIZE, token
        assert load_env.server.count("runs", space=token) <= pages(len(world.runs(token))), token
    assert load_env.server.count("runs", space=many) <= 8


@pytest.mark.usefixtures("after_night_one")
def test_unchanged_world_costs_one_request_per_space(load_env: LoadEnv):
    open_pages = _pages_holding_open_runs(load_env.world)
    load_env.server.reset_counts()

    summary = run_load(load_env.db)

    assert summary.exit_code == 0
    assert load_env.server.count("spaces") == 1
    for token in load_env.world.space_tokens():
        allowed = len(open_pages[token] | {1})
        assert load_env.server.count("runs", space=token) <= allowed, token
        assert _runs_asked_for(load_env.server, token) <= allowed * PAGE_SIZE, token
    assert summary.runs_new == 0


@pytest.mark.usefixtures("after_night_one")
def test_night_of_new_runs_and_status_changes(load_env: LoadEnv):
    world = load_env.world
    before = stored_runs(load_env.db)
    big = max(world.space_tokens(), key=lambda token: len(world.runs(token)))
    open_runs = [run["run_id"] for run in world.runs(big) if run["status"] not in TERMINAL]
    assert len(open_runs) >= 2, "the fixture world needs open runs"
    world.set_status(open_runs[0], "completed", bump_modified=True)
    world.set_status(open_runs[1], "failed", bump_modified=False)
    new_ids = world.add_runs(big, n=13)
    open_pages = _pages_holding(world, big, set(open_runs))
    load_env.server.reset_counts()

    summary = run_load(load_env.db)

    assert summary.exit_code == 0, summary.render()
    assert_matches_truth(load_env.db, world)
    stored = stored_runs(load_env.db)
    assert stored[open_runs[1]]["status"] == "failed"
    assert set(new_ids) <= set(stored)
    assert summary.runs_new == 13
    # Only what could have changed was written again: new runs, and runs that were open.
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        rewritten = {row[0] for row in con.execute(
            "select run_id from unpod.runs where space_token = ? "
            "and _dlt_load_id = (select max(_dlt_load_id) from unpod.runs)", [big]
        ).fetchall()}
    was_open = {run_id for run_id, row in before.items() if row["status"] not in TERMINAL}
    top_pages = {run["run_id"] for run in world.runs(big)[: PAGE_SIZE * (pages(13) + 1)]}
    assert set(new_ids) <= rewritten <= was_open | top_pages
    assert len(rewritten) < len(world.runs(big)) / 2
    budget = pages(13) + len(open_pages) + 1
    assert load_env.server.count("runs", space=big) <= budget
    assert _runs_asked_for(load_env.server, big) <= budget * PAGE_SIZE


@pytest.mark.usefixtures("after_night_one")
def test_space_added_later_with_only_old_runs(load_env: LoadEnv):
    world = load_env.world
    late = world.add_space(runs=35, age_days=400)

    summary = run_load(load_env.db)

    assert summary.exit_code == 0
    assert_matches_truth(load_env.db, world)
    assert {row["space_token"] for row in stored_runs(load_env.db).values()} >= {late}


def test_runs_created_while_paging(tmp_path, monkeypatch):
    world = World(seed=5, spaces=2, runs=[45, 80])
    with SandboxServer(world, create_during_paging=1) as server:
        db = _env(tmp_path, monkeypatch, world, server)
        for night in range(2):
            summary = run_load(db)
            assert summary.exit_code == 0
            # Only a run created after a space's very last request may be missing: it waits for the next night.
            stored = stored_runs(db)
            for token in world.space_tokens():
                missing = [index for index, run in enumerate(world.runs(token)) if run["run_id"] not in stored]
                assert missing in ([], [0]), (night, token, missing)
            # Every run that did land is stored as the API shows it tonight, status and modified included.
            for run_id, run in world.truth().items():
                if run_id in stored:
                    row = stored[run_id]
                    assert (row["status"], row["modified"]) == (run.get("status"), as_utc(run.get("modified"))), (
                        night, run_id)
            world.advance(hours=24, seed=9 + night)
        server.create_during_paging = 0
        run_load(db)
    assert_matches_truth(db, world)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) = count(distinct run_id) from unpod.runs").fetchone()[0]


def test_transient_faults_on_fifteen_percent_of_requests(tmp_path, monkeypatch):
    world = World(seed=3, spaces=4, runs=300)
    faults = FaultPlan(seed=3, rate=0.15, kinds=("500", "502", "503", "504", "429", "drop", "truncate"), retry_after_s=0.01)
    with SandboxServer(world, faults=faults) as server:
        db = _env(tmp_path, monkeypatch, world, server)
        # Five attempts leave a 0.15**5 chance per request of a space failing: make the test's own luck negligible.
        monkeypatch.setenv("SOURCES__UNPOD__REQUEST_MAX_ATTEMPTS", "10")
        first = run_load(db)
        world.advance(hours=24, seed=4)
        second = run_load(db)
    assert first.exit_code == 0 and second.exit_code == 0, second.render()
    assert first.retries > 0
    assert_matches_truth(db, world)


@pytest.mark.usefixtures("after_night_one")
def test_full_scan_marks_unlisted_runs_deleted_and_clears_when_they_return(load_env: LoadEnv):
    world = load_env.world
    token = max(world.space_tokens(), key=lambda space: len(world.runs(space)))
    gone = world.runs(token)[5]
    world.delete_run(gone["run_id"])

    run_load(load_env.db, full_scan=True)

    stored = stored_runs(load_env.db)
    assert stored[gone["run_id"]]["deleted_at"] is not None
    assert sum(row["deleted_at"] is not None for row in stored.values()) == 1
    assert_matches_truth(load_env.db, world)
    # The run is listed again, as it was, at the top of its space (where the API puts an item it serves anew).
    assert world.add_raw_run(token, gone) == gone["run_id"]

    run_load(load_env.db, full_scan=True)

    stored = stored_runs(load_env.db)
    assert stored[gone["run_id"]]["deleted_at"] is None
    assert sum(row["deleted_at"] is not None for row in stored.values()) == 0
    assert_matches_truth(load_env.db, world)


def _runs_asked_for(server: SandboxServer, token: str) -> int:
    return sum(int(record.page_size) for record in server.requests if record.kind == "runs" and record.space_token == token)


def _pages_holding_open_runs(world: World) -> dict[str, set[int]]:
    """Pages (1-based) that hold each space's open runs, as the API lists them now."""
    return {
        token: _pages_holding(
            world, token, {run["run_id"] for run in world.runs(token) if run.get("status") not in TERMINAL}
        )
        for token in world.space_tokens()
    }


def _pages_holding(world: World, token: str, run_ids: set[str]) -> set[int]:
    return {index // PAGE_SIZE + 1 for index, run in enumerate(world.runs(token)) if run["run_id"] in run_ids}


def _env(tmp_path, monkeypatch, world: World, server: SandboxServer):
    from conftest import make_env

    for key, value in make_env(tmp_path, world, server, page_size=str(PAGE_SIZE)).items():
        if key.startswith(("SOURCES__", "DLT_")):
            monkeypatch.setenv(key, value)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return data / "unpod_runs.duckdb"


@pytest.mark.usefixtures("after_night_one")
def test_new_runs_with_backdated_created_still_land(load_env: LoadEnv):
    world = load_env.world
    token = max(world.space_tokens(), key=lambda space: len(world.runs(space)))
    backdated = [
        world.add_raw_run(token, {"run_id": f"R{index:032x}", "status": "completed", "collection_ref": "collection_data_old",
                                  "created": "2020-01-01T00:00:00", "modified": "2020-01-01T00:05:00"})
        for index in range(1, 16)
    ]

    run_load(load_env.db)

    assert set(backdated) <= set(stored_runs(load_env.db))
    assert_matches_truth(load_env.db, world)


@pytest.mark.usefixtures("after_night_one")
def test_open_run_found_after_deletions_move_it(load_env: LoadEnv):
    world = load_env.world
    token = max(world.space_tokens(), key=lambda space: len(world.runs(space)))
    listing = world.runs(token)
    open_index = max(index for index, run in enumerate(listing) if run["status"] not in TERMINAL)
    newer = [run["run_id"] for run in listing[:open_index] if run["status"] in TERMINAL][:4]
    older = [run["run_id"] for run in listing[open_index + 1:] if run["status"] in TERMINAL][:3]
    for run_id in newer + older:
        world.delete_run(run_id)
    world.add_runs(token, n=7)
    world.set_status(listing[open_index]["run_id"], "failed", bump_modified=False)

    run_load(load_env.db)

    assert stored_runs(load_env.db)[listing[open_index]["run_id"]]["status"] == "failed"
    assert_matches_truth(load_env.db, world)


def test_lost_working_copy_is_rebuilt_from_the_published_file_without_losing_a_night(load_env: LoadEnv, caplog):
    caplog.set_level(logging.INFO, logger="unpod_runs.pipeline.engines")
    world = load_env.world
    run_load(load_env.db)
    night_one = load_env.db.read_bytes()
    world.advance(hours=24, seed=31)
    run_load(load_env.db)
    # Each night seeds its working copy from the file it published the night before, and keeps dlt's local state.
    assert not [record for record in caplog.records if "dlt_state_restored" in record.msg]
    # The working copy is lost and the published file is a night behind dlt's local state.
    shutil.rmtree(Workspace.for_db(load_env.db).work_dir)
    load_env.db.write_bytes(night_one)
    world.advance(hours=24, seed=32)

    summary = run_load(load_env.db)

    assert summary.exit_code == 0
    assert_matches_truth(load_env.db, world)
    assert [record for record in caplog.records if "dlt_state_restored" in record.msg]
    # The cursor came back with the published file: the night is incremental, not a full read.
    assert summary.spaces_read_in_full == 0


def test_an_organization_whose_spaces_are_all_empty_loads_cleanly(tmp_path, monkeypatch):
    world = World(seed=6, spaces=2, runs=[0, 0])
    with SandboxServer(world) as server:
        db = _env(tmp_path, monkeypatch, world, server)
        first = run_load(db)
        assert first.exit_code == 0 and first.check_problems == ""
        assert "0 stored" in first.render()
        assert render_status(db).count("never") == 2  # no run created or modified yet
        world.add_runs(world.space_tokens()[0], n=3)
        second = run_load(db)
    assert second.exit_code == 0 and second.runs_new == 3
    assert_matches_truth(db, world)


@pytest.mark.usefixtures("after_night_one")
def test_a_cursor_of_the_first_format_is_moved_to_the_cursor_table(load_env: LoadEnv):
    """The first format kept every open run in dlt's state: the next load reads them there and writes the table."""
    from unpod_runs.pipeline.engines import DuckDbFileEngine
    from unpod_runs.pipeline.load import _open_pipeline

    world = load_env.world
    workspace = Workspace.for_db(load_env.db)
    assert workspace.prepare() == "seeded"
    with duckdb.connect(str(workspace.work_db)) as con:
        tracked = con.execute("select run_id, space_token, rank, status, modified from unpod.run_cursor").fetchall()
        con.execute("delete from unpod.run_cursor")
    assert tracked, "the fixture world needs open runs"
    pipeline = _open_pipeline(DuckDbFileEngine(load_env.db))
    with pipeline.managed_state(extract_state=True) as state:
        spaces = state["sources"]["unpod"]["spaces"]
        for token, cursor in spaces.items():
            cursor.pop("version")
            cursor["open_runs"] = {run_id: [rank, status, modified.isoformat() if modified else None]
                                   for run_id, space, rank, status, modified in tracked if space == token}
    pipeline.normalize()
    pipeline.load()
    finished = next(run_id for run_id, *_ in tracked)
    world.set_status(finished, "completed", bump_modified=False)

    summary = run_load(load_env.db)

    assert summary.exit_code == 0 and summary.spaces_read_in_full == 0
    assert_matches_truth(load_env.db, world)
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        now_tracked = {row[0] for row in con.execute("select run_id from unpod.run_cursor").fetchall()}
    assert now_tracked == {run_id for run_id, *_ in tracked} - {finished}


def test_giving_memory_back_between_steps_never_fails_a_night(tmp_path):
    """Changes not yet written (here another transaction's) cannot be evicted: the step goes on, with DuckDB's
    limit as configured and nothing lost."""
    with duckdb.connect(str(tmp_path / "night.duckdb"), config=WRITER_CONFIG) as con:
        con.execute("create table runs as select range as n from range(8000000)")
        con.execute("checkpoint")
        other = con.cursor()
        other.execute("begin")
        other.execute("update runs set n = n + 1")
        other.execute("delete from runs where n % 3 = 0")
        release_memory(con)
        other.execute("commit")
        assert con.execute("select count(*) from runs").fetchone() == (5_333_334,)
        (limit,) = con.execute("select current_setting('memory_limit')").fetchone()
    with duckdb.connect(config=WRITER_CONFIG) as fresh:
        assert limit == fresh.execute("select current_setting('memory_limit')").fetchone()[0]
