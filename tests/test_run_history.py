"""Night after night against the sandbox, with finishes both bumped and silent: the status history holds what each
load saw, when (in the API's clock), and the durations' brackets hold the true finish of every run."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Callable

import duckdb
import pytest

from conftest import LoadEnv, NightOne, as_utc
from unpod_runs.api.client import UnpodClient
from unpod_runs.pipeline.load import run_load
from unpod_runs.analytics.models import SCHEMA, build_models, build_state
from unpod_runs.sandbox.server import SandboxServer
from unpod_runs.sandbox.world import TERMINAL_STATUSES, World

NIGHTS = 5


HISTORY_WORLD = {"seed": 7, "runs": [300, 120, 0], "open_fraction": 0.25}


@pytest.fixture
def world() -> World:
    return World(**HISTORY_WORLD)


def history(db) -> dict[tuple, tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select run_id, status, modified, first_seen_at, last_seen_at, space_token "
                           "from unpod.run_status_history").fetchall()
    return {(run_id, status, modified): (first, last, space) for run_id, status, modified, first, last, space in rows}


def nights(load_env: LoadEnv, night_one: NightOne,
           after_each: Callable[[int], None] = lambda night: None) -> list[tuple]:
    """Loads NIGHTS nights, the first from a template; between them the world moves on and some open runs finish by
    hand, bumped or not. The sandbox's Date is the world's clock, so the template's history is this world's.

    Returns (the world's clock at each load, the truth it served then)."""
    world = load_env.world
    seen = []
    for night in range(NIGHTS):
        if not night:
            night_one.copy_into(load_env.db, Path(load_env.env["DLT_DATA_DIR"]), HISTORY_WORLD, page_size="10")
        else:
            world.advance(hours=24, finish_fraction=0.3)
            open_runs = sorted(run_id for run_id, run in world.truth().items()
                               if run["status"] not in TERMINAL_STATUSES)
            # A change of open status without a bump, then a silent finish within the same night.
            world.set_status(open_runs[0], "in_progress", bump_modified=False)
            world.advance(hours=1, new_runs=0, finish_fraction=0)
            world.set_status(open_runs[1], "completed", bump_modified=False)
            world.set_status(open_runs[2], "failed", bump_modified=True)
            summary = run_load(load_env.db)
            assert summary.exit_code == 0, summary.render()
        seen.append((world.now, world.truth()))
        after_each(night)
    return seen


def test_runs_page_carries_the_api_date(world: World, server: SandboxServer):
    client = UnpodClient(server.base_url, world.api_token)
    token = world.space_tokens()[-1]
    assert client.runs_page(token, 1, 5).date == world.now
    world.advance(hours=3)
    assert client.runs_page(token, 1, 5).date == world.now


def test_history_holds_every_version_a_load_saw_with_its_api_dates(load_env: LoadEnv, night_one: NightOne):
    seen = nights(load_env, night_one)
    stored = history(load_env.db)

    expected: dict[tuple, list] = {}
    for now, truth in seen:
        for run_id, run in truth.items():
            key = (run_id, run["status"], as_utc(run["modified"]))
            first_last = expected.setdefault(key, [now, now, run["space_token"]])
            if run["status"] not in TERMINAL_STATUSES:
                first_last[1] = now  # every load finds every open run; a terminal one is not read again
    assert set(stored) == set(expected)
    for key, (first, last, space) in expected.items():
        assert stored[key] == (first, last, space), key
    # Unchanged open runs moved their version's last_seen_at without a new row: far fewer rows than sightings.
    assert len(stored) < sum(len(truth) for _, truth in seen) / 2


def test_first_load_seeds_the_history_and_a_full_scan_keeps_first_seen(load_env: LoadEnv):
    world = load_env.world
    run_load(load_env.db)
    first_night = world.now
    seeded = history(load_env.db)
    assert len(seeded) == len(world.truth())
    assert {(first, last) for first, last, _ in seeded.values()} == {(first_night, first_night)}
    world.advance(hours=24, new_runs=3, finish_fraction=0.5)

    summary = run_load(load_env.db, full_scan=True)

    assert summary.exit_code == 0, summary.render()
    stored = history(load_env.db)
    for key, (first, _, _) in seeded.items():
        assert stored[key][0] == first_night, key
    new_versions = set(stored) - set(seeded)
    assert new_versions and all(stored[key][:2] == (world.now, world.now) for key in new_versions)
    assert world.now - first_night == timedelta(hours=24)


def test_every_duration_bracket_holds_the_true_finish_and_every_finish_source_is_right(load_env: LoadEnv, night_one: NightOne):
    seen = nights(load_env, night_one)
    finishes = load_env.world.finishes()
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        cursor = con.execute("select * from analytics.run_durations")
        names = [column[0] for column in cursor.description]
        durations = {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}

    final_truth = seen[-1][1]
    sources = set()
    for run_id, run in final_truth.items():
        row = durations[run_id]
        if run["status"] not in TERMINAL_STATUSES:
            assert row["finish_source"] is None and row["duration_max_seconds"] is None, run_id
            continue
        sightings = [(now, truth[run_id]) for now, truth in seen if run_id in truth]
        seen_open = [(now, version) for now, version in sightings if version["status"] not in TERMINAL_STATUSES]
        finished_by = next(now for now, version in sightings if version["status"] in TERMINAL_STATUSES)
        created, modified = as_utc(run["created"]), as_utc(run["modified"])
        if seen_open:
            finished_after, last_open = seen_open[-1][0], seen_open[-1][1]
            source = "observed" if as_utc(last_open["modified"]) == modified else "modified"
        else:
            finished_after = None
            source = "modified" if modified > created else "unknown"
        sources.add(source)
        assert (row["finish_source"], row["finished_after"], row["finished_by"]) == (
            source, finished_after, finished_by), run_id
        assert row["duration_seconds"] == (modified - created).total_seconds(), run_id
        true_duration = (finishes[run_id] - created).total_seconds()
        assert row["duration_min_seconds"] <= true_duration <= row["duration_max_seconds"], (run_id, row)
        if source == "observed":
            assert row["duration_min_seconds"] == (finished_after - created).total_seconds(), run_id
    assert sources == {"modified", "observed", "unknown"}

    with duckdb.connect(str(load_env.db), read_only=True) as con:
        exact, = con.execute("select sum(exact_duration_runs) from analytics.collection_stats").fetchone()
        daily_exact, = con.execute("select sum(exact_duration_runs) from analytics.daily_run_stats").fetchone()
    expected_exact = sum(1 for row in durations.values() if row["finish_source"] == "modified")
    assert exact == daily_exact == expected_exact


def analytics_snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    relations = [name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = ? and table_name != 'model_build_state'",
        [SCHEMA],
    ).fetchall()]
    return {name: sorted(con.execute(f"select * from {SCHEMA}.{name}").fetchall(), key=repr) for name in relations}


def test_nightly_refresh_with_history_equals_a_full_build(load_env: LoadEnv, night_one: NightOne, tmp_path):
    kinds = []

    def compare(night: int) -> None:
        copy = tmp_path / f"night_{night}.duckdb"
        shutil.copyfile(load_env.db, copy)
        with duckdb.connect(str(copy)) as con:
            kinds.append(build_state(con).kind)
            refreshed = analytics_snapshot(con)
            build_models(con)
            assert refreshed == analytics_snapshot(con), f"night {night}"

    nights(load_env, night_one, compare)
    assert "incremental" in kinds


def test_open_runs_lists_every_open_run_with_its_age_in_the_api_clock(load_env: LoadEnv, night_one: NightOne):
    seen = nights(load_env, night_one)
    now, truth = seen[-1]
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        cursor = con.execute("select * from analytics.open_runs")
        names = [column[0] for column in cursor.description]
        open_runs = {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}
    expected = {run_id for run_id, run in truth.items() if run["status"] not in TERMINAL_STATUSES}
    assert set(open_runs) == expected and expected
    for run_id, row in open_runs.items():
        run = truth[run_id]
        # The night its current version first appeared: the first load whose truth showed it.
        changed_seen = next(at for at, earlier in seen
                            if run_id in earlier and (earlier[run_id]["status"], earlier[run_id]["modified"])
                            == (run["status"], run["modified"]))
        assert (row["status"], row["last_seen_at"], row["last_change_seen_at"]) == (run["status"], now, changed_seen)
        assert row["age_seconds"] == (now - as_utc(run["created"])).total_seconds()
        assert row["unchanged_for_seconds"] == (now - max(changed_seen, as_utc(run["modified"]))).total_seconds()
        assert row["space_name"] is not None
