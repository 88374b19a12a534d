-- One row per day, the UTC date runs were created (runs without a created form their own NULL group).
-- daily_run_stats for all collections together: how many runs each day brought, how many of them failed and how
-- long they took. A run counts on the day it was created, whatever its status now.
-- incremental key: day
-- columns:
--   day: the UTC date of created (DATE), whatever the reader's TimeZone.
--   runs: runs created that day, open ones too.
--   completed_runs: of those, runs with status completed.
--   failed_runs: of those, runs with status failed.
--   partially_completed_runs: of those, runs with status partially_completed (terminal, not failed).
--   open_runs: of those, runs still in a non-terminal status (unknown and NULL included).
--   terminal_runs: completed_runs + failed_runs + partially_completed_runs.
--   failure_rate: failed_runs / terminal_runs; NULL when none is terminal.
--   p50_duration_seconds: median (quantile_cont 0.5) duration of the day's terminal runs.
--   p95_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the day's terminal runs.

with

runs as (
    select * from analytics.run_durations
),

aggregated as (
    select
        runs.day,
        count(*) as runs,
        count(*) filter (where runs.status = 'completed') as completed_runs,
        count(*) filter (where runs.is_failed) as failed_runs,
        count(*) filter (where runs.status = 'partially_completed') as partially_completed_runs,
        count(*) filter (where not runs.is_terminal) as open_runs,
        count(*) filter (where runs.is_terminal) as terminal_runs,
        -- both percentiles from one pass over the durations: half the work of two quantile_cont calls
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) as duration_quantiles
    from runs
    group by runs.day
),

final as (
    select
        day,
        runs,
        completed_runs,
        failed_runs,
        partially_completed_runs,
        open_runs,
        terminal_runs,
        failed_runs / nullif(terminal_runs, 0)::double as failure_rate,
        duration_quantiles[1] as p50_duration_seconds,
        duration_quantiles[2] as p95_duration_seconds
    from aggregated
)

select * from final
