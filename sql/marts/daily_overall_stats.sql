-- One row per day, the UTC date runs were created (runs without a created form their own NULL group).
-- daily_run_stats for all collections together: how many runs each day brought, how many of them failed and how
-- long they took. A run counts on the day it was created, whatever its status now. Its figures are run_stats'
-- rows of grain day.
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

stats as (
    select * from analytics.run_stats
),

final as (
    select
        stats.day,
        stats.total_runs as runs,
        stats.completed_runs,
        stats.failed_runs,
        stats.partially_completed_runs,
        stats.open_runs,
        stats.terminal_runs,
        stats.failure_rate,
        stats.p50_duration_seconds,
        stats.p95_duration_seconds
    from stats
    where stats.grain = 'day'
)

select * from final
