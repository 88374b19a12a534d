-- The marts count exactly the runs of unpod.runs that the API still lists: no run lost, none counted twice.
-- severity: error
with

listed_runs as (
    select
        count(*) as runs,
        count(*) filter (where runs.is_failed) as failed_runs,
        count(*) filter (where runs.is_terminal) as terminal_runs
    from analytics.int_runs as runs
),

mart_totals as (
    select
        'analytics.run_durations' as relation,
        count(*) as runs,
        count(*) filter (where is_failed) as failed_runs,
        count(*) filter (where is_terminal) as terminal_runs
    from analytics.run_durations
    union all
    select 'analytics.collection_stats', sum(total_runs), sum(failed_runs), sum(terminal_runs)
    from analytics.collection_stats
    union all
    select 'analytics.daily_run_stats', sum(runs), sum(failed_runs), sum(terminal_runs)
    from analytics.daily_run_stats
    union all
    select 'analytics.space_stats', sum(total_runs), sum(failed_runs), sum(terminal_runs)
    from analytics.space_stats
    union all
    select
        'analytics.runs_by_status',
        sum(runs),
        sum(runs) filter (where status = 'failed'),
        sum(runs) filter (where is_terminal)
    from analytics.runs_by_status
),

final as (
    select
        mart_totals.relation,
        listed_runs.runs as expected_runs,
        coalesce(mart_totals.runs, 0) as mart_runs,
        listed_runs.failed_runs as expected_failed_runs,
        coalesce(mart_totals.failed_runs, 0) as mart_failed_runs,
        listed_runs.terminal_runs as expected_terminal_runs,
        coalesce(mart_totals.terminal_runs, 0) as mart_terminal_runs
    from mart_totals
    cross join listed_runs
    where
        coalesce(mart_totals.runs, 0) != listed_runs.runs
        or coalesce(mart_totals.failed_runs, 0) != listed_runs.failed_runs
        or coalesce(mart_totals.terminal_runs, 0) != listed_runs.terminal_runs
)

select * from final
