-- analytics.daily_overall_stats has one row for each day of daily_run_stats, whose run counts are that day's summed over its collections, and whose failure rate is failed / terminal.
-- severity: error
with

-- match_key: the day, or 'null' for the runs without one (they must match too); PostgreSQL runs a full outer join
-- on equality only, not on "is not distinct from"
collections as (
    select
        day,
        coalesce(cast(day as varchar), 'null') as match_key,
        sum(runs) as runs,
        sum(completed_runs) as completed_runs,
        sum(failed_runs) as failed_runs,
        sum(partially_completed_runs) as partially_completed_runs,
        sum(open_runs) as open_runs,
        sum(terminal_runs) as terminal_runs
    from analytics.daily_run_stats
    group by day
),

totals as (
    select
        day,
        coalesce(cast(day as varchar), 'null') as match_key,
        count(*) as copies,
        min(runs) as runs,
        min(completed_runs) as completed_runs,
        min(failed_runs) as failed_runs,
        min(partially_completed_runs) as partially_completed_runs,
        min(open_runs) as open_runs,
        min(terminal_runs) as terminal_runs
    from analytics.daily_overall_stats
    group by day
),

offending as (
    select coalesce(collections.day, totals.day) as day, coalesce(totals.copies, 0) as copies,
        'a day whose counts differ from daily_run_stats' as problem
    from collections
    full outer join totals on totals.match_key = collections.match_key
    where totals.copies is distinct from 1
        or collections.runs is distinct from totals.runs
        or collections.completed_runs is distinct from totals.completed_runs
        or collections.failed_runs is distinct from totals.failed_runs
        or collections.partially_completed_runs is distinct from totals.partially_completed_runs
        or collections.open_runs is distinct from totals.open_runs
        or collections.terminal_runs is distinct from totals.terminal_runs
    union all
    select day, 1, 'a failure rate that is not failed / terminal'
    from analytics.daily_overall_stats
    where failure_rate is distinct from failed_runs / nullif(terminal_runs, 0)::double
)

select * from offending
