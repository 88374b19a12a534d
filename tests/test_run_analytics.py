"""The marts analysts ask for after durations, night after night against the sandbox (finishes bumped and silent) and
on hand-made runs whose answers are known: time in status, queue time apart from run time, trends with their
regression rule, recovery from failures, and freshness."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import duckdb
import pytest
from conftest import LoadEnv, NightOne, as_utc
from conftest_analytics import create_runs_db, quantile_cont, rows_as_dicts, run
from test_run_history import HISTORY_WORLD, nights

from unpod_runs.analytics.checks import run_checks
from unpod_runs.analytics.models import build_models
from unpod_runs.sandbox.world import TERMINAL_STATUSES, World

QUEUED, RUNNING = ("pending", "scheduled"), ("running", "in_progress")


@pytest.fixture
def world() -> World:
    return World(**HISTORY_WORLD)  # the world of the night-one template that nights() starts from


def marts(db, *names: str) -> dict[str, list[dict]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: rows_as_dicts(con, f"select * from analytics.{name}") for name in names}


def seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def expected_spells(seen: list[tuple]) -> dict[str, list[dict]]:
    """Each run's spells in open statuses, from the versions each load was served and when (the API's clock)."""
    versions: dict[str, dict[tuple, list]] = defaultdict(dict)
    for now, truth in seen:
        for run_id, item in truth.items():
            first_last = versions[run_id].setdefault((item["status"], as_utc(item["modified"])), [now, now])
            if item["status"] not in TERMINAL_STATUSES:
                first_last[1] = now  # a terminal version is not read again
    final = seen[-1][1]
    spells: dict[str, list[dict]] = {}
    for run_id, by_version in versions.items():
        ordered = sorted(by_version.items(), key=lambda entry: (entry[1][0], entry[0][1]))
        chain: list[dict] = []
        for (status, _), (first, last) in ordered:
            if chain and chain[-1]["status"] == status:
                chain[-1]["left_after"] = max(chain[-1]["left_after"], last)
            else:
                chain.append({"status": status, "entered_by": first, "left_after": last})
        created = as_utc(final[run_id]["created"])
        for index, spell in enumerate(chain):
            spell["entered_after"] = chain[index - 1]["left_after"] if index else created
            spell["left_by"] = chain[index + 1]["entered_by"] if index + 1 < len(chain) else None
            spell["min_seconds"] = seconds(spell["left_after"], spell["entered_by"])
            spell["max_seconds"] = seconds(max(spell["left_after"], spell["left_by"] or spell["left_after"]),
                                           spell["entered_after"])
            spell["collection_ref"] = final[run_id]["collection_ref"]
        opened = [spell for spell in chain if spell["status"] not in TERMINAL_STATUSES]
        if opened:
            spells[run_id] = opened
    return spells


def test_time_in_status_brackets_hold_what_the_loads_saw_and_the_true_finish(load_env: LoadEnv, night_one: NightOne):
    seen = nights(load_env, night_one)
    spells = expected_spells(seen)
    finishes = load_env.world.finishes()
    times = marts(load_env.db, "time_in_status")["time_in_status"]

    rows = {(row["run_id"], row["status"]): row for row in times}
    assert len(rows) == len(times)
    expected = {(run_id, spell["status"]): spell for run_id, chain in spells.items() for spell in chain}
    assert set(rows) == set(expected)
    for key, spell in expected.items():
        row = rows[key]
        assert (row["first_seen_at"], row["last_seen_at"], row["left_by"], row["is_current"]) == (
            spell["entered_by"], spell["left_after"], spell["left_by"], spell["left_by"] is None), key
        assert (row["min_seconds"], row["max_seconds"]) == (spell["min_seconds"], spell["max_seconds"]), key
        assert 0 <= row["min_seconds"] <= row["max_seconds"], key
        assert row["phase"] == ("queued" if key[1] in QUEUED else "running" if key[1] in RUNNING else "held"), key
    # The true finish of a run seen open lies between the last sighting of its last open status and the first
    # sighting of its terminal one: where that status ended.
    checked = 0
    for run_id, chain in spells.items():
        if run_id in finishes:
            last_open = chain[-1]
            assert last_open["left_after"] <= finishes[run_id] <= last_open["left_by"], run_id
            checked += 1
    assert checked > 20
    # A status change without a bump (to in_progress) is a spell of its own.
    assert any(len(chain) > 1 for chain in spells.values())


def test_collection_time_in_status_brackets_the_median_queue_and_run_times(load_env: LoadEnv, night_one: NightOne):
    seen = nights(load_env, night_one)
    spells = expected_spells(seen)
    rows = {row["collection_ref"]: row for row in marts(load_env.db, "collection_time_in_status")[
        "collection_time_in_status"]}

    phases: dict[tuple, dict] = {}
    for run_id, chain in spells.items():
        for spell in chain:
            phase = "queued" if spell["status"] in QUEUED else "running" if spell["status"] in RUNNING else "held"
            entry = phases.setdefault((spell["collection_ref"], phase, run_id), {"min": 0.0, "max": 0.0, "now": False})
            entry["min"] += spell["min_seconds"]
            entry["max"] += spell["max_seconds"]
            entry["now"] |= spell["left_by"] is None
    assert set(rows) == {collection for collection, _, _ in phases}
    for collection, row in rows.items():
        for phase in ("queued", "running"):
            done = [entry for (ref, kind, _), entry in phases.items() if (ref, kind) == (collection, phase)
                    and not entry["now"]]
            assert row[f"{phase}_runs"] == len(done), (collection, phase)
            assert row[f"p50_{phase}_min_seconds"] == quantile_cont([entry["min"] for entry in done], 0.5)
            assert row[f"p50_{phase}_max_seconds"] == quantile_cont([entry["max"] for entry in done], 0.5)
        held_now = [entry for (ref, kind, _), entry in phases.items() if (ref, kind) == (collection, "held")
                    and entry["now"]]
        assert row["held_now_runs"] == len(held_now)
    assert sum(row["queued_runs"] for row in rows.values()) > 0
    assert sum(row["running_runs"] for row in rows.values()) > 0


def test_trends_recovery_and_freshness_recomputed_from_the_runs(load_env: LoadEnv, night_one: NightOne):
    seen = nights(load_env, night_one)
    as_of = seen[-1][0]
    finishes = load_env.world.finishes()
    built = marts(load_env.db, "run_durations", "collection_trends", "collection_recovery", "collection_freshness")
    durations = built["run_durations"]

    by_collection: dict[str | None, list[dict]] = defaultdict(list)
    for row in durations:
        by_collection[row["collection_ref"]].append(row)

    trends = {row["collection_ref"]: row for row in built["collection_trends"]}
    windows = {"last_7d": (as_of - timedelta(days=7), as_of), "prior_7d": (as_of - timedelta(days=14),
                                                                            as_of - timedelta(days=7))}
    expected_trends = set()
    for collection, runs in by_collection.items():
        for window, (start, end) in windows.items():
            inside = [row for row in runs if start < row["created"] <= end]
            if inside:
                expected_trends.add(collection)
            if collection not in trends:
                continue
            terminal = [row for row in inside if row["is_terminal"]]
            exact = [row["duration_seconds"] for row in terminal if row["finish_source"] == "modified"]
            row = trends[collection]
            assert row["as_of"] == as_of
            assert (row[f"{window}_runs"], row[f"{window}_terminal_runs"], row[f"{window}_failed_runs"]) == (
                len(inside), len(terminal), sum(run["is_failed"] for run in terminal)), (collection, window)
            assert row[f"{window}_failure_rate"] == (
                sum(run["is_failed"] for run in terminal) / len(terminal) if terminal else None)
            assert row[f"{window}_p95_duration_seconds"] == pytest.approx(
                quantile_cont([run["duration_seconds"] for run in terminal], 0.95))
            assert row[f"{window}_exact_duration_runs"] == len(exact)
            assert row[f"{window}_p95_exact_duration_seconds"] == pytest.approx(quantile_cont(exact, 0.95))
    assert set(trends) == expected_trends and trends

    recovery = {row["collection_ref"]: row for row in built["collection_recovery"]}
    freshness = {row["collection_ref"]: row for row in built["collection_freshness"]}
    assert set(freshness) == set(by_collection)
    for collection, runs in by_collection.items():
        completed = [row for row in runs if row["status"] == "completed"]
        last_completed = max((finish_lower_bound(row) for row in completed), default=None)
        fresh = freshness[collection]
        assert (fresh["as_of"], fresh["last_completed_at"]) == (as_of, last_completed), collection
        if completed:
            # The earliest moment the latest completion can have happened: never after the true one.
            assert last_completed <= max(finishes[row["run_id"]] for row in completed) <= as_of
            assert fresh["seconds_since_last_completed"] == seconds(as_of, last_completed)
        recent = [row for row in runs if row["status"] in ("completed", "failed")
                  and finish_lower_bound(row) > as_of - timedelta(days=30)]
        incidents = expected_incidents(recent)
        if not recent:
            assert collection not in recovery
            continue
        row = recovery[collection]
        recovered = [seconds(end, start) for start, end, _ in incidents if end is not None]
        assert (row["incidents"], row["recovered_incidents"]) == (len(incidents), len(recovered)), collection
        assert row["mean_time_to_recovery_seconds"] == (
            pytest.approx(sum(recovered) / len(recovered)) if recovered else None)
        ongoing = [incident for incident in incidents if incident[1] is None]
        assert row["is_failing_now"] == bool(ongoing)
        assert row["failures_since_last_completed"] == (ongoing[0][2] if ongoing else 0)
    assert any(row["recovered_incidents"] for row in recovery.values())
    assert {row["as_of"] for row in recovery.values()} == {as_of}


def finish_lower_bound(row: dict) -> datetime:
    return row["created"] + timedelta(seconds=row["duration_min_seconds"])


def expected_incidents(runs: list[dict]) -> list[tuple]:
    """(first failure's finish, the next completed finish or None, failed runs) for each run of failures."""
    ordered = sorted((row for row in runs if row["status"] in ("completed", "failed")),
                     key=lambda row: (finish_lower_bound(row), row["run_id"]))
    incidents: list[list] = []
    failing = False
    for row in ordered:
        if row["status"] == "failed":
            if failing:
                incidents[-1][2] += 1
            else:
                incidents.append([finish_lower_bound(row), None, 1])
                failing = True
        elif failing:
            incidents[-1][1] = finish_lower_bound(row)
            failing = False
    return [tuple(incident) for incident in incidents]


def test_every_check_passes_after_nights_of_bumped_and_silent_finishes(load_env: LoadEnv, night_one: NightOne):
    nights(load_env, night_one)
    with duckdb.connect(str(load_env.db)) as con:
        failed = [result.name for result in run_checks(con) if not result.passed and result.severity == "error"]
    assert failed == []


# ---- the rules on runs whose answers are known -------------------------------------------------------------------

AS_OF = datetime.fromisoformat("2026-03-15T12:00:00+00:00")


def window_runs(collection: str, days_ago: float, count: int, failed: int, duration_s: int) -> list[dict]:
    """``count`` terminal runs of ``collection`` created ``days_ago`` before AS_OF, ``failed`` of them failed."""
    rows = []
    for index in range(count):
        created = AS_OF - timedelta(days=days_ago, minutes=index)
        rows.append(run(f"R_{collection}_{days_ago}_{index}", "failed" if index < failed else "completed",
                        created.strftime("%Y-%m-%dT%H:%M:%S"),
                        (created + timedelta(seconds=duration_s)).strftime("%Y-%m-%dT%H:%M:%S"),
                        collection_ref=collection))
    return rows


def test_the_regression_flag_follows_its_stated_rule(tmp_path):
    runs = (
        window_runs("worse", 10, 40, 2, 60) + window_runs("worse", 3, 40, 12, 60)         # 5% -> 30%
        + window_runs("noisy", 10, 40, 4, 60) + window_runs("noisy", 3, 40, 7, 60)        # +7.5 points, z < 1.96
        + window_runs("few", 10, 10, 0, 60) + window_runs("few", 3, 10, 10, 60)           # too few runs to tell
        + window_runs("slower", 10, 60, 0, 60) + window_runs("slower", 3, 60, 0, 600)     # p95 60 s -> 600 s
        + window_runs("steady", 10, 60, 3, 60) + window_runs("steady", 3, 60, 3, 80)      # p95 +20 s only
        + window_runs("old", 20, 30, 30, 60)                                              # outside both windows
        + [run("R_clock", "completed", "2026-03-15T11:59:00", AS_OF.strftime("%Y-%m-%dT%H:%M:%S"),
               collection_ref="steady")]
    )
    with create_runs_db(tmp_path / "trends.duckdb", runs) as con:
        build_models(con)
        trends = {row["collection_ref"]: row for row in rows_as_dicts(con, "select * from analytics.collection_trends")}
        failed_checks = [result.name for result in run_checks(con) if not result.passed]
    assert failed_checks == []
    assert set(trends) == {"worse", "noisy", "few", "slower", "steady"}
    flags = {name: (row["is_failure_regression"], row["is_duration_regression"], row["is_regression"])
             for name, row in trends.items()}
    assert flags == {
        "worse": (True, False, True),
        "noisy": (False, False, False),
        "few": (False, False, False),
        "slower": (False, True, True),
        "steady": (False, False, False),
    }
    worse = trends["worse"]
    assert worse["as_of"] == AS_OF
    assert (worse["prior_7d_failure_rate"], worse["last_7d_failure_rate"]) == (0.05, 0.3)
    assert worse["failure_rate_change"] == pytest.approx(0.25)
    pooled = 14 / 80
    assert worse["failure_rate_z"] == pytest.approx(0.25 / (pooled * (1 - pooled) * (2 / 40)) ** 0.5)
    assert trends["noisy"]["failure_rate_z"] < 1.96
    assert (trends["slower"]["prior_7d_p95_exact_duration_seconds"],
            trends["slower"]["last_7d_p95_exact_duration_seconds"]) == (60, 600)
    assert trends["slower"]["p95_exact_change_ratio"] == 10


def test_recovery_measures_each_run_of_failures_to_the_next_completed_run(tmp_path):
    def at(hours: float) -> str:
        return (AS_OF + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")

    def finished(run_id: str, status: str, hours: float, collection: str = "flaky") -> dict:
        return run(run_id, status, at(hours - 0.01), at(hours), collection_ref=collection)

    runs = [
        finished("R1", "completed", 1), finished("R2", "failed", 2), finished("R3", "failed", 3),
        finished("R4", "completed", 5),                               # recovered after 3 h
        finished("R5", "failed", 6), finished("R6", "partially_completed", 7),
        finished("R7", "completed", 10),                              # recovered after 4 h
        finished("R8", "failed", 11), finished("R9", "failed", 12),   # failing since 11 h
        finished("R10", "completed", 1, "solid"), finished("R11", "completed", 2, "solid"),
        finished("R12", "partially_completed", 3, "partial"),
        run("R13", "pending", at(4), collection_ref="partial"),
    ]
    with create_runs_db(tmp_path / "recovery.duckdb", runs) as con:
        build_models(con)
        recovery = {row["collection_ref"]: row for row in rows_as_dicts(con, "select * from analytics.collection_recovery")}
        freshness = {row["collection_ref"]: row
                     for row in rows_as_dicts(con, "select * from analytics.collection_freshness")}
    assert set(recovery) == {"flaky", "solid"}
    flaky = recovery["flaky"]
    assert (flaky["failed_runs"], flaky["incidents"], flaky["recovered_incidents"]) == (5, 3, 2)
    assert flaky["mean_time_to_recovery_seconds"] == 3.5 * 3600
    assert flaky["p50_time_to_recovery_seconds"] == 3.5 * 3600
    assert flaky["max_time_to_recovery_seconds"] == 4 * 3600
    assert (flaky["is_failing_now"], flaky["failing_since"], flaky["failures_since_last_completed"]) == (
        True, AS_OF + timedelta(hours=11), 2)
    solid = recovery["solid"]
    assert (solid["incidents"], solid["mean_time_to_recovery_seconds"], solid["is_failing_now"]) == (0, None, False)

    # Without a status history, as_of is the latest modified: R9's finish.
    assert freshness["flaky"]["as_of"] == AS_OF + timedelta(hours=12)
    assert freshness["flaky"]["last_completed_at"] == AS_OF + timedelta(hours=10)
    assert freshness["flaky"]["seconds_since_last_completed"] == 2 * 3600
    assert freshness["solid"]["seconds_since_last_completed"] == 10 * 3600
    assert (freshness["partial"]["last_completed_at"], freshness["partial"]["open_runs"]) == (None, 1)
