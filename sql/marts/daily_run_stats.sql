-- One row per (day, collection_ref), day being the UTC date a run was created.
-- Failure rate and duration over time: a run counts on the day it was created, whatever its status now. Its
-- figures are run_stats' rows of grain day, collection_ref.
-- columns:
--   day: the UTC date of created (DATE), whatever the reader's TimeZone.
--   collection_ref: the collection; NULL groups the runs that came without one.
--   runs: runs created that day, open ones too.
--   completed_runs: of those, runs with status completed.
--   failed_runs: of those, runs with status failed.
--   partially_completed_runs: of those, runs with status partially_completed (terminal, not failed).
--   failure_rate: failed_runs / terminal runs of the day; NULL when none is terminal.
--   p50_duration_seconds: median (quantile_cont 0.5) duration of the day's terminal runs.
--   open_runs: of those, runs still in a non-terminal status (unknown and NULL included).
--   terminal_runs: completed_runs + failed_runs + partially_completed_runs.
--   p95_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the day's terminal runs.
--   exact_duration_runs: terminal runs whose finish_source is modified: the durations most likely exact.
--   p50_exact_duration_seconds: median (quantile_cont 0.5) duration of those runs only.
--   p95_exact_duration_seconds: 95th percentile (quantile_cont 0.95) duration of those runs only.

with

stats as (
    select * from analytics.run_stats
),

final as (
    select
        stats.day,
        stats.collection_ref,
        stats.total_runs as runs,
        stats.completed_runs,
        stats.failed_runs,
        stats.partially_completed_runs,
        stats.failure_rate,
        stats.p50_duration_seconds,
        stats.open_runs,
        stats.terminal_runs,
        stats.p95_duration_seconds,
        stats.exact_duration_runs,
        stats.p50_exact_duration_seconds,
        stats.p95_exact_duration_seconds
    from stats
    where stats.grain = 'day, collection_ref'
)

select * from final
