-- One row per (day, collection_ref), day being the UTC date a run was created.
-- Failure rate and duration over time: a run counts on the day it was created, whatever its status now.
-- incremental key: day, collection_ref
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

runs as (
    select * from analytics.run_durations
),

aggregated as (
    select
        runs.day as day,
        runs.collection_ref,
        count(*) as runs,
        count(*) filter (where runs.status = 'completed') as completed_runs,
        count(*) filter (where runs.is_failed) as failed_runs,
        count(*) filter (where runs.status = 'partially_completed') as partially_completed_runs,
        count(*) filter (where not runs.is_terminal) as open_runs,
        count(*) filter (where runs.is_terminal) as terminal_runs,
        -- both percentiles from one pass over the durations: half the work of two quantile_cont calls
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) as duration_quantiles,
        count(*) filter (where runs.finish_source = 'modified') as exact_duration_runs,
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) filter (where runs.finish_source = 'modified')
            as exact_duration_quantiles
    from runs
    group by runs.day, runs.collection_ref
),

final as (
    select
        day,
        collection_ref,
        runs,
        completed_runs,
        failed_runs,
        partially_completed_runs,
        failed_runs / nullif(terminal_runs, 0)::double as failure_rate,
        duration_quantiles[1] as p50_duration_seconds,
        open_runs,
        terminal_runs,
        duration_quantiles[2] as p95_duration_seconds,
        exact_duration_runs,
        exact_duration_quantiles[1] as p50_exact_duration_seconds,
        exact_duration_quantiles[2] as p95_exact_duration_seconds
    from aggregated
)

select * from final
