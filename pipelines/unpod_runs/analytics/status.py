"""``unpod-runs status``: what the published database knows, per space and as a whole."""

from __future__ import annotations

from pathlib import Path

import duckdb

from unpod_runs.statuses import TERMINAL_STATUSES, sql_list

# Before the first run is loaded (an organization whose spaces are all empty), dlt has not created unpod.runs.
NO_RUNS = (
    "(select null::varchar as space_token, null::varchar as status, null::timestamptz as created, "
    "null::timestamptz as modified, null::timestamptz as deleted_at where false)"
)
SPACES_QUERY = """
with stored as (
    select
        space_token,
        count(*) as runs_stored,
        count(*) filter (where coalesce(status, '') not in {terminal}
                         and deleted_at is null) as open_runs,
        max(modified) as newest_modified
    from {runs}
    group by space_token
)
select
    coalesce(status.space_token, stored.space_token) as space_token,
    status.last_success_at,
    status.last_outcome,
    coalesce(stored.runs_stored, 0) as runs_stored,
    coalesce(stored.open_runs, 0) as open_runs,
    status.runs_listed,
    status.open_runs_tracked,
    status.last_mode,
    status.last_requests,
    status.last_error
from unpod.space_status as status
full outer join stored on stored.space_token = status.space_token
order by 1
"""


def render_status(db_path: Path, engine=None) -> str:
    """A screen of text: one line per space, then the database's freshness (of ``engine``, when not the file)."""
    with engine.reader() if engine is not None else duckdb.connect(str(db_path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        has_runs = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'unpod' and table_name = 'runs'"
        ).fetchone()[0]
        runs = "unpod.runs" if has_runs else NO_RUNS
        rows = con.execute(SPACES_QUERY.format(runs=runs, terminal=sql_list(TERMINAL_STATUSES))).fetchall()
        last_load = con.execute(
            "select finished_at, outcome, spaces_ok, spaces_failed from unpod.load_history order by finished_at desc limit 1"
        ).fetchone()
        newest_run = con.execute(f"select max(created), max(modified) from {runs}").fetchone()
    lines = [
        f"database {engine.location() if engine is not None else db_path}",
        f"{'space':<26} {'last success (UTC)':<20} {'stored':>8} {'open':>6} {'listed':>8} {'tracked':>7} {'mode':<11} {'requests':>8}  last error",
    ]
    for token, success, outcome, stored, open_runs, listed, tracked, mode, requests, error in rows:
        lines.append(
            f"{token:<26} {_when(success):<20} {stored:>8} {open_runs:>6} {_num(listed):>8} {_num(tracked):>7} {mode or '-':<11} "
            f"{_num(requests):>8}  {error or ''}"
        )
    if last_load:
        finished, outcome, ok, failed = last_load
        lines.append(f"last load {_when(finished)} UTC: {outcome} ({ok} spaces ok, {failed} failed)")
    lines.append(f"newest run created {_when(newest_run[0])}, newest modified {_when(newest_run[1])} (UTC)")
    return "\n".join(lines)


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "never"


def _num(value: object) -> str:
    return "-" if value is None else str(value)
