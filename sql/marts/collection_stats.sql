-- One row per collection_ref (runs without one form their own NULL group).
-- How often a collection's runs fail and how long they take: the first place to look for a problem collection.
-- incremental key: collection_ref
-- columns:
--   collection_ref: the collection; NULL groups the runs that came without one.
--   total_runs: every run of the collection, open ones too.
--   completed_runs: runs with status completed.
--   failed_runs: runs with status failed.
--   partially_completed_runs: runs with status partially_completed (terminal, not failed).
--   open_runs: runs in any other status, unknown ones and NULL included.
--   terminal_runs: completed + failed + partially_completed.
--   failure_rate: failed_runs / terminal_runs; NULL when the collection has no terminal run.
--   avg_duration_seconds: mean duration of the terminal runs.
--   p50_duration_seconds: median (quantile_cont 0.5) duration of the terminal runs.
--   p95_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the terminal runs.
--   first_created: earliest created over all runs, open ones too.
--   last_created: latest created over all runs, open ones too.
--   max_duration_seconds: longest duration of a terminal run.
--   exact_duration_runs: terminal runs whose finish_source is modified: the durations most likely exact.
--   p50_exact_duration_seconds: median (quantile_cont 0.5) duration of those runs only.
--   p95_exact_duration_seconds: 95th percentile (quantile_cont 0.95) duration of those runs only.

with

runs as (
    select * from analytics.run_durations
),

aggregated as (
    select
        runs.collection_ref,
        count(*) as total_runs,
        count(*) filter (where runs.status = 'completed') as completed_runs,
        count(*) filter (where runs.is_failed) as failed_runs,
        count(*) filter (where runs.status = 'partially_completed') as partially_completed_runs,
        count(*) filter (where not runs.is_terminal) as open_runs,
        count(*) filter (where runs.is_terminal) as terminal_runs,
        avg(runs.duration_seconds) as avg_duration_seconds,
        -- both percentiles from one pass over the durations: half the work of two quantile_cont calls
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) as duration_quantiles,
        min(runs.created) as first_created,
        max(runs.created) as last_created,
        max(runs.duration_seconds) as max_duration_seconds,
        count(*) filter (where runs.finish_source = 'modified') as exact_duration_runs,
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) filter (where runs.finish_source = 'modified')
            as exact_duration_quantiles
    from runs
    group by runs.collection_ref
),

final as (
    select
        collection_ref,
        total_runs,
        completed_runs,
        failed_runs,
        partially_completed_runs,
        open_runs,
        terminal_runs,
        failed_runs / nullif(terminal_runs, 0)::double as failure_rate,
        avg_duration_seconds,
        duration_quantiles[1] as p50_duration_seconds,
        duration_quantiles[2] as p95_duration_seconds,
        first_created,
        last_created,
        max_duration_seconds,
        exact_duration_runs,
        exact_duration_quantiles[1] as p50_exact_duration_seconds,
        exact_duration_quantiles[2] as p95_exact_duration_seconds
    from aggregated
)

select * from final
