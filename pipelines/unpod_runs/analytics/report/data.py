"""What the report reads: each part of the page is one query over the ``analytics`` marts.

The marts hold every figure, each defined once in ``sql/``: these queries select, order, limit and format them
(timestamps in UTC in SQL, so the reader's TimeZone changes nothing), and compute none of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from unpod_runs.analytics.report.formatting import UTC_FORMAT

# How much of each list the page shows: the busiest collections of the heat map, the rows of a table.
HEATMAP_COLLECTIONS = 12
TABLE_ROWS = 10

Row = dict[str, Any]


@dataclass(frozen=True)
class ReportData:
    """The rows the page is made of, each a dict by column name."""

    headline: Row               # analytics.overall_stats, with its dates formatted
    latest_load: Row | None     # the newest row of analytics.load_history; None before the first load
    statuses: list[Row]
    collections: list[Row]      # analytics.collection_stats, every collection
    days: list[Row]
    heatmap: list[Row]          # the daily_run_stats of the busiest collections
    trends: list[Row]
    stuck: list[Row]
    queues: list[Row]
    recovery: list[Row]
    spaces: list[Row]


def read_report_data(con: duckdb.DuckDBPyConnection) -> ReportData:
    """Everything the page shows, read from the marts: aggregates per collection and day, never the runs."""
    return ReportData(
        headline=_rows(con, _HEADLINE_SQL)[0],
        latest_load=next(iter(_rows(con, _LATEST_LOAD_SQL)), None),
        statuses=_rows(con, _STATUS_SQL),
        collections=_rows(con, _COLLECTIONS_SQL),
        days=_rows(con, _DAYS_SQL),
        heatmap=_rows(con, _HEATMAP_SQL),
        trends=_rows(con, _TRENDS_SQL),
        stuck=_rows(con, _STUCK_SQL),
        queues=_rows(con, _QUEUE_SQL),
        recovery=_rows(con, _RECOVERY_SQL),
        spaces=_rows(con, _SPACES_SQL),
    )


_HEADLINE_SQL = f"""
select
    * exclude (last_modified, first_created, last_created),
    strftime(last_modified at time zone 'UTC', '{UTC_FORMAT}') as last_modified,
    strftime(first_created at time zone 'UTC', '%Y-%m-%d') as first_day,
    strftime(last_created at time zone 'UTC', '%Y-%m-%d') as last_day
from analytics.overall_stats
"""

_LATEST_LOAD_SQL = f"""
select
    strftime(finished_at at time zone 'UTC', '{UTC_FORMAT}') as finished_at,
    outcome,
    full_scan
from analytics.load_history
order by started_at desc nulls last
limit 1
"""

_STATUS_SQL = "select * from analytics.runs_by_status order by runs desc, status"

_COLLECTIONS_SQL = "select * from analytics.collection_stats"

_DAYS_SQL = "select * from analytics.daily_overall_stats where day is not null order by day"

_HEATMAP_SQL = f"""
with

busiest as (
    select collection_ref
    from analytics.collection_stats
    order by total_runs desc, collection_ref
    limit {HEATMAP_COLLECTIONS}
),

final as (
    select daily.day, daily.collection_ref, daily.failure_rate, daily.terminal_runs
    from analytics.daily_run_stats as daily
    inner join busiest
        on daily.collection_ref is not distinct from busiest.collection_ref
    where daily.day is not null
)

select * from final
"""

_SPACES_SQL = f"""
select
    space_token,
    space_name,
    total_runs,
    open_runs,
    failure_rate,
    failed_runs,
    terminal_runs,
    p95_duration_seconds,
    strftime(last_modified at time zone 'UTC', '{UTC_FORMAT}') as last_modified
from analytics.space_stats
order by total_runs desc, space_token
limit {TABLE_ROWS}
"""


# Regressions first, then the collections whose failure rate rose most.
_TRENDS_SQL = """
select *
from analytics.collection_trends
order by is_regression desc, failure_rate_change desc nulls last, p95_exact_change_ratio desc nulls last,
    collection_ref
"""


# The runs unchanged longest: the stuck ones. Before the status history knows a run, its time unchanged is unknown.
_STUCK_SQL = f"""
select
    run_id,
    collection_ref,
    coalesce(space_name, space_token) as space,
    status,
    age_seconds,
    unchanged_for_seconds,
    strftime(created at time zone 'UTC', '{UTC_FORMAT}') as created
from analytics.open_runs
order by unchanged_for_seconds desc nulls last, created, run_id
limit {TABLE_ROWS}
"""

_QUEUE_SQL = f"""
select *
from analytics.collection_time_in_status
where queued_runs + running_runs + queued_now_runs + running_now_runs + held_now_runs > 0
order by p50_queued_max_seconds desc nulls last, max_queued_now_seconds desc nulls last, collection_ref
limit {TABLE_ROWS}
"""


# Failing collections first, then the ones whose last completion is oldest.
_RECOVERY_SQL = f"""
select
    freshness.collection_ref,
    freshness.seconds_since_last_completed,
    freshness.open_runs,
    recovery.failed_runs,
    recovery.recovered_incidents,
    recovery.mean_time_to_recovery_seconds,
    recovery.max_time_to_recovery_seconds,
    coalesce(recovery.is_failing_now, false) as is_failing_now,
    recovery.failures_since_last_completed,
    strftime(recovery.failing_since at time zone 'UTC', '{UTC_FORMAT}') as failing_since
from analytics.collection_freshness as freshness
left join analytics.collection_recovery as recovery
    on recovery.collection_ref is not distinct from freshness.collection_ref
order by is_failing_now desc, freshness.seconds_since_last_completed desc nulls first, freshness.collection_ref
limit {TABLE_ROWS}
"""


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cursor = con.execute(query)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
