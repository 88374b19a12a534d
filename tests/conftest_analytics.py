"""Shared helpers of the analytics tests: a DuckDB file holding ``unpod.runs`` as the loader writes it, and the
SPEC.md metrics recomputed in plain Python, independently of the SQL.

Imported explicitly (``from conftest_analytics import ...``); ``tests/`` is on ``sys.path`` under pytest's default
rootdir-based import mode.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pyarrow as pa

from unpod_runs.pipeline import history
from unpod_runs.pipeline.records import RUNS_SCHEMA, TIMESTAMP

TERMINAL = {"completed", "failed", "partially_completed"}

# The run schema (records.py) as dlt creates the table: no constraints, so the data checks must see a NULL or repeated
# run_id to be tested, and dlt's own columns after the run's.
_DUCKDB_TYPES = {pa.string(): "varchar", pa.int64(): "bigint", TIMESTAMP: "timestamptz"}
RUN_COLUMNS = (*RUNS_SCHEMA.names, "_dlt_load_id", "_dlt_id")
RUNS_DDL = "create table unpod.runs (\n" + ",\n".join(
    [f'    "{field.name}" {_DUCKDB_TYPES[field.type]}' for field in RUNS_SCHEMA]
    + ["    _dlt_load_id varchar", "    _dlt_id varchar"]
) + "\n)"

SPACES_DDL = """
create table unpod.spaces (
    token varchar primary key,
    name varchar,
    slug varchar,
    space_type varchar,
    content_type varchar,
    organization__name varchar
)
"""



def utc(text: str) -> datetime:
    """The API's 'YYYY-MM-DDTHH:MM:SS' (UTC, no zone) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def run(
    run_id: str,
    status: str | None,
    created: str,
    modified: str | None = None,
    collection_ref: str | None = "collection_a",
    space_token: str = "SPACEAAAAAAAAAAAAAAAAAAA",
    deleted_at: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One row of unpod.runs; timestamps as the API's UTC strings, ``modified`` defaulting to ``created``."""
    row = {
        "run_id": run_id,
        "space_token": space_token,
        "collection_ref": collection_ref,
        "run_mode": "dev",
        "status": status,
        "batch_count": 1,
        "created": utc(created),
        "modified": utc(modified or created),
        "space_id": "346",
        "user": "38",
        "thread_id": None,
        "deleted_at": utc(deleted_at) if deleted_at else None,
        "_dlt_load_id": "1700000000.0",
        "_dlt_id": f"dlt_{run_id}",
    }
    row.update(fields)
    return row


def rows_from_truth(truth: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """unpod.runs rows for the simulator's ground truth (``World.truth()``), fields the API omitted as NULL."""
    rows = []
    for run_id, item in truth.items():
        rows.append(
            run(
                run_id,
                item.get("status"),
                item["created"],
                item["modified"],
                collection_ref=item.get("collection_ref"),
                space_token=item["space_token"],
                run_mode=item.get("run_mode"),
                batch_count=item.get("batch_count"),
                space_id=item.get("space_id"),
                user=item.get("user"),
                thread_id=item.get("thread_id"),
            )
        )
    return rows


def create_runs_db(path: Path, runs: Iterable[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A DuckDB file at ``path`` with ``unpod.runs`` holding ``runs``; returns an open connection."""
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists unpod")
    con.execute(RUNS_DDL)
    insert_runs(con, runs)
    return con


def insert_runs(con: duckdb.DuckDBPyConnection, runs: Iterable[dict[str, Any]]) -> None:
    placeholders = ", ".join("?" for _ in RUN_COLUMNS)
    columns = ", ".join(f'"{column}"' for column in RUN_COLUMNS)
    rows = [[row.get(column) for column in RUN_COLUMNS] for row in runs]
    if rows:
        con.executemany(f"insert into unpod.runs ({columns}) values ({placeholders})", rows)


def add_spaces(con: duckdb.DuckDBPyConnection, spaces: Iterable[dict[str, Any]]) -> None:
    """Create unpod.spaces (without the columns dlt would not have created) and fill it."""
    con.execute(SPACES_DDL)
    for space in spaces:
        con.execute(
            "insert into unpod.spaces (token, name, organization__name) values (?, ?, ?)",
            [space["token"], space.get("name"), space.get("organization__name")],
        )


def add_load_history(con: duckdb.DuckDBPyConnection, loads: Iterable[dict[str, Any]]) -> None:
    con.execute(history.CREATE_LOAD_HISTORY)  # the loader's own table, as it creates it
    for load in loads:
        columns = ", ".join(load)
        placeholders = ", ".join("?" for _ in load)
        con.execute(f"insert into unpod.load_history ({columns}) values ({placeholders})", list(load.values()))


def add_status_history(con: duckdb.DuckDBPyConnection, sightings: list[tuple[datetime, dict[str, dict]]]) -> None:
    """unpod.run_status_history as nightly loads would write it, from (the API's clock, ``World.truth()``) per load:
    every open run is read each night (its version's last_seen_at moves), a terminal one only when it first shows."""
    versions: dict[tuple, list] = {}
    for seen_at, truth in sightings:
        for run_id, item in truth.items():
            key = (run_id, item.get("status"), utc(item["modified"]))
            first_last = versions.setdefault(key, [item["space_token"], seen_at, seen_at])
            if item.get("status") not in TERMINAL:
                first_last[2] = seen_at
    con.execute("create table unpod.run_status_history (run_id varchar, space_token varchar, status varchar, "
                "modified timestamptz, first_seen_at timestamptz, last_seen_at timestamptz)")
    con.executemany("insert into unpod.run_status_history values (?, ?, ?, ?, ?, ?)",
                    [[run_id, space, status, modified, first, last]
                     for (run_id, status, modified), (space, first, last) in versions.items()])


def rows_as_dicts(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cursor = con.execute(query)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# ---- the SPEC.md metrics, recomputed in plain Python -------------------------------------------------------------


def listed(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs the API still lists: a run with deleted_at is out of every analytics relation."""
    return [row for row in runs if row.get("deleted_at") is None]


def quantile_cont(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks, as DuckDB's quantile_cont and numpy's default percentile."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def expected_duration(row: dict[str, Any]) -> float | None:
    if row["status"] not in TERMINAL or row["created"] is None or row["modified"] is None:
        return None
    return (row["modified"] - row["created"]).total_seconds()


def expected_day(row: dict[str, Any]) -> date | None:
    created = row["created"]
    return None if created is None else created.astimezone(timezone.utc).date()


def group_metrics(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Every SPEC.md metric of one group of runs."""
    statuses = [row["status"] for row in group]
    terminal = sum(status in TERMINAL for status in statuses)
    failed = statuses.count("failed")
    durations = [duration for duration in map(expected_duration, group) if duration is not None]
    created = [row["created"] for row in group if row["created"] is not None]
    return {
        "total_runs": len(group),
        "completed_runs": statuses.count("completed"),
        "failed_runs": failed,
        "partially_completed_runs": statuses.count("partially_completed"),
        "open_runs": len(group) - terminal,
        "terminal_runs": terminal,
        "failure_rate": failed / terminal if terminal else None,
        "avg_duration_seconds": statistics.fmean(durations) if durations else None,
        "p50_duration_seconds": quantile_cont(durations, 0.5),
        "p95_duration_seconds": quantile_cont(durations, 0.95),
        "first_created": min(created) if created else None,
        "last_created": max(created) if created else None,
    }


def expected_collection_stats(runs: Iterable[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    groups: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in listed(runs):
        groups[row["collection_ref"]].append(row)
    return {key: group_metrics(group) for key, group in groups.items()}


def expected_daily_run_stats(runs: Iterable[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in listed(runs):
        groups[(expected_day(row), row["collection_ref"])].append(row)
    expected = {}
    for key, group in groups.items():
        metrics = group_metrics(group)
        expected[key] = {
            "runs": metrics["total_runs"],
            "completed_runs": metrics["completed_runs"],
            "failed_runs": metrics["failed_runs"],
            "partially_completed_runs": metrics["partially_completed_runs"],
            "failure_rate": metrics["failure_rate"],
            "p50_duration_seconds": metrics["p50_duration_seconds"],
            "open_runs": metrics["open_runs"],
            "terminal_runs": metrics["terminal_runs"],
            "p95_duration_seconds": metrics["p95_duration_seconds"],
        }
    return expected


def expected_overall_stats(runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """collection_stats' figures over every listed run, with the spaces and collections they fall in."""
    runs = listed(runs)
    metrics = group_metrics(runs)
    del metrics["avg_duration_seconds"]
    metrics["spaces"] = len({row["space_token"] for row in runs if row["space_token"] is not None})
    metrics["collections"] = len({row["collection_ref"] for row in runs})  # the runs without one are a group too
    modified = [row["modified"] for row in runs if row["modified"] is not None]
    metrics["last_modified"] = max(modified) if modified else None
    return metrics


def expected_daily_overall_stats(runs: Iterable[dict[str, Any]]) -> dict[date | None, dict[str, Any]]:
    groups: dict[date | None, list[dict[str, Any]]] = defaultdict(list)
    for row in listed(runs):
        groups[expected_day(row)].append(row)
    expected = {}
    for day, group in groups.items():
        metrics = group_metrics(group)
        del metrics["avg_duration_seconds"], metrics["first_created"], metrics["last_created"]
        metrics["runs"] = metrics.pop("total_runs")
        expected[day] = metrics
    return expected


def expected_run_durations(runs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    expected = {}
    for row in listed(runs):
        terminal = row["status"] in TERMINAL
        expected[row["run_id"]] = {
            "space_token": row["space_token"],
            "collection_ref": row["collection_ref"],
            "run_mode": row["run_mode"],
            "status": row["status"],
            "created": row["created"],
            "finished_at": row["modified"] if terminal else None,
            "duration_seconds": expected_duration(row),
            "day": expected_day(row),
        }
    return expected


def assert_metrics_equal(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Compare every expected metric; floats to a relative 1e-9, everything else exactly (NULL as None)."""
    for name, want in expected.items():
        got = actual[name]
        if isinstance(want, float) and got is not None:
            assert abs(got - want) <= 1e-9 * max(1.0, abs(want)), f"{where}: {name} is {got!r}, expected {want!r}"
        else:
            assert got == want, f"{where}: {name} is {got!r}, expected {want!r}"
