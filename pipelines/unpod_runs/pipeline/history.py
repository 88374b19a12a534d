"""The pipeline's own bookkeeping tables: one row per load, and each space's latest outcome.

They live in schema ``unpod`` beside dlt's tables so ``status`` and dashboards read them from the published
file; dlt leaves tables outside its schema alone. Their SQL runs on every engine (DuckDB, DuckLake, PostgreSQL):
no constraint (DuckLake has none), so a space's row is updated where it exists and inserted where it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

CREATE_LOAD_HISTORY = """
create table if not exists unpod.load_history (
    load_id varchar,
    started_at timestamptz,
    finished_at timestamptz,
    outcome varchar,
    full_scan boolean,
    spaces_ok integer,
    spaces_failed integer,
    failed_spaces varchar,
    runs_new bigint,
    runs_updated bigint,
    runs_rejected bigint,
    requests bigint,
    retries bigint,
    duration_seconds double precision
)
"""

CREATE_SPACE_STATUS = """
create table if not exists unpod.space_status (
    space_token varchar,
    last_attempt_at timestamptz,
    last_success_at timestamptz,
    last_outcome varchar,
    last_error varchar,
    runs_listed bigint,
    open_runs_tracked bigint,
    last_mode varchar,
    last_requests bigint
)
"""


@dataclass
class LoadRecord:
    load_id: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    full_scan: bool
    spaces_ok: int
    spaces_failed: int
    failed_spaces: str
    runs_new: int
    runs_updated: int
    runs_rejected: int
    requests: int
    retries: int

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists unpod")
    con.execute(CREATE_LOAD_HISTORY)
    con.execute(CREATE_SPACE_STATUS)


def append_load(con: duckdb.DuckDBPyConnection, record: LoadRecord) -> None:
    con.execute(
        "insert into unpod.load_history values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            record.load_id, record.started_at, record.finished_at, record.outcome, record.full_scan,
            record.spaces_ok, record.spaces_failed, record.failed_spaces, record.runs_new, record.runs_updated,
            record.runs_rejected, record.requests, record.retries, record.duration_seconds,
        ],
    )


def set_outcome(con: duckdb.DuckDBPyConnection, load_id: str, outcome: str) -> None:
    """Correct a load's outcome once its data checks have spoken, in the model built from it too."""
    con.execute("update unpod.load_history set outcome = ? where load_id = ?", [outcome, load_id])
    if con.execute(
        "select count(*) from information_schema.tables where table_schema = 'analytics' and table_name = 'load_history'"
    ).fetchone()[0]:
        con.execute("update analytics.load_history set outcome = ? where load_id = ?", [outcome, load_id])


def record_space_successes(con: duckdb.DuckDBPyConnection, at: datetime, rows: list[tuple]) -> None:
    """Rows of (token, runs_listed, open_runs, mode, requests), in a few statements (executemany is slow here).

    A known space's row is updated in place, a new one inserted: rewriting every row each night would make the
    DuckDB file take new blocks for the table every night and give the old ones back the next.
    """
    if not rows:
        return
    tokens, listed, open_runs, modes, requests = (list(column) for column in zip(*rows))
    tonight = (
        "select unnest(?) as space_token, ?::timestamptz as seen_at, unnest(?) as runs_listed, "
        "unnest(?) as open_runs_tracked, unnest(?) as last_mode, unnest(?) as last_requests"
    )
    parameters = [tokens, at, listed, open_runs, modes, requests]
    con.begin()
    try:
        con.execute(
            f"""
            update unpod.space_status set
                last_attempt_at = tonight.seen_at, last_success_at = tonight.seen_at, last_outcome = 'ok',
                last_error = null,
                runs_listed = tonight.runs_listed, open_runs_tracked = tonight.open_runs_tracked,
                last_mode = tonight.last_mode, last_requests = tonight.last_requests
            from ({tonight}) as tonight
            where space_status.space_token = tonight.space_token
            """,
            parameters,
        )
        con.execute(
            f"""
            insert into unpod.space_status
            select tonight.space_token, tonight.seen_at, tonight.seen_at, 'ok', null, tonight.runs_listed,
                tonight.open_runs_tracked, tonight.last_mode, tonight.last_requests
            from ({tonight}) as tonight
            where tonight.space_token not in (select space_token from unpod.space_status)
            """,
            parameters,
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def record_space_failure(con: duckdb.DuckDBPyConnection, token: str, at: datetime, error: str) -> None:
    """A failed space keeps its last success and counts; only the attempt and the error change."""
    con.execute(
        """
        insert into unpod.space_status (space_token)
        select ? where not exists (select 1 from unpod.space_status where space_token = ?)
        """,
        [token, token],
    )
    con.execute(
        """
        update unpod.space_status set last_attempt_at = ?, last_outcome = 'failed', last_error = ?
        where space_token = ?
        """,
        [at, error, token],
    )
