-- One row per collection_ref (runs without one form their own NULL group).
-- How often a collection's runs fail and how long they take: the first place to look for a problem collection.
-- Its figures are run_stats' rows of grain collection_ref.
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

stats as (
    select * from analytics.run_stats
),

final as (
    select
        stats.collection_ref,
        stats.total_runs,
        stats.completed_runs,
        stats.failed_runs,
        stats.partially_completed_runs,
        stats.open_runs,
        stats.terminal_runs,
        stats.failure_rate,
        stats.avg_duration_seconds,
        stats.p50_duration_seconds,
        stats.p95_duration_seconds,
        stats.first_created,
        stats.last_created,
        stats.max_duration_seconds,
        stats.exact_duration_runs,
        stats.p50_exact_duration_seconds,
        stats.p95_exact_duration_seconds
    from stats
    where stats.grain = 'collection_ref'
)

select * from final
