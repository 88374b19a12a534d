-- One row per database: every run the API still lists, taken together.
-- The headline figures of the whole organization, as the report shows them: how many runs, how many failed, how
-- long they took, how far those durations can be trusted, and how many open runs have not moved for a day. The
-- counts are collection_stats' summed, and the spaces, the first and last dates and the stuck runs are read from the
-- marts that hold them (a few rows each): only the percentiles and the finish sources need a pass over the runs.
-- columns:
--   total_runs: every listed run, open ones too.
--   completed_runs: runs with status completed.
--   failed_runs: runs with status failed.
--   partially_completed_runs: runs with status partially_completed (terminal, not failed).
--   open_runs: runs in any other status, unknown ones and NULL included.
--   terminal_runs: completed + failed + partially_completed.
--   failure_rate: failed_runs / terminal_runs; NULL when no run is terminal.
--   p50_duration_seconds: median (quantile_cont 0.5) duration of the terminal runs.
--   p95_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the terminal runs.
--   exact_duration_runs: terminal runs whose finish_source is modified: the durations most likely exact.
--   observed_duration_runs: terminal runs whose finish_source is observed: the API did not bump modified at the finish, so the duration is known only as a bracket.
--   unknown_duration_runs: terminal runs whose finish_source is unknown: first seen finished with modified = created.
--   exact_duration_share: exact_duration_runs / terminal_runs; NULL when no run is terminal.
--   observed_duration_share: observed_duration_runs / terminal_runs; NULL when no run is terminal.
--   unknown_duration_share: unknown_duration_runs / terminal_runs; NULL when no run is terminal.
--   p50_exact_duration_seconds: median (quantile_cont 0.5) duration of the exact runs only.
--   p95_exact_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the exact runs only.
--   observed_min_duration_seconds: the least duration_min_seconds of the observed runs.
--   observed_max_duration_seconds: the greatest duration_max_seconds of the observed runs.
--   observed_avg_bracket_seconds: the mean of duration_max_seconds - duration_min_seconds over the observed runs: how closely their durations are known.
--   spaces: spaces with runs (the space_tokens of space_stats).
--   collections: collections with runs, the NULL group included (the rows of collection_stats).
--   first_created: earliest created over all runs, open ones too.
--   last_created: latest created over all runs, open ones too.
--   last_modified: latest modified over all runs: how fresh the data is.
--   unchanged_a_day_runs: open runs unchanged for a day or more (unchanged_for_seconds >= 86400 in open_runs): the stuck ones.
--   unchanged_a_day_collections: distinct collection_ref values among those runs (NULL not counted).

with

runs as (
    select * from analytics.run_durations
),

collections as (
    select * from analytics.collection_stats
),

spaces as (
    select * from analytics.space_stats
),

open_runs as (
    select * from analytics.open_runs
),

duration_figures as (
    select
        -- both percentiles from one pass over the durations: half the work of two quantile_cont calls
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) as duration_quantiles,
        count(*) filter (where runs.finish_source = 'modified') as exact_duration_runs,
        count(*) filter (where runs.finish_source = 'observed') as observed_duration_runs,
        count(*) filter (where runs.finish_source = 'unknown') as unknown_duration_runs,
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) filter (where runs.finish_source = 'modified')
            as exact_duration_quantiles,
        min(runs.duration_min_seconds) filter (where runs.finish_source = 'observed') as observed_min_duration_seconds,
        max(runs.duration_max_seconds) filter (where runs.finish_source = 'observed') as observed_max_duration_seconds,
        avg(runs.duration_max_seconds - runs.duration_min_seconds) filter (where runs.finish_source = 'observed')
            as observed_avg_bracket_seconds
    from runs
),

collection_figures as (
    select
        cast(coalesce(sum(collections.total_runs), 0) as bigint) as total_runs,
        cast(coalesce(sum(collections.completed_runs), 0) as bigint) as completed_runs,
        cast(coalesce(sum(collections.failed_runs), 0) as bigint) as failed_runs,
        cast(coalesce(sum(collections.partially_completed_runs), 0) as bigint) as partially_completed_runs,
        cast(coalesce(sum(collections.open_runs), 0) as bigint) as open_runs,
        cast(coalesce(sum(collections.terminal_runs), 0) as bigint) as terminal_runs,
        count(*) as collections,
        min(collections.first_created) as first_created,
        max(collections.last_created) as last_created
    from collections
),

space_figures as (
    select
        count(spaces.space_token) as spaces,
        max(spaces.last_modified) as last_modified
    from spaces
),

stuck_figures as (
    select
        count(*) filter (where open_runs.unchanged_for_seconds >= 86400) as unchanged_a_day_runs,
        count(distinct open_runs.collection_ref) filter (where open_runs.unchanged_for_seconds >= 86400)
            as unchanged_a_day_collections
    from open_runs
),

final as (
    select
        collection_figures.total_runs,
        collection_figures.completed_runs,
        collection_figures.failed_runs,
        collection_figures.partially_completed_runs,
        collection_figures.open_runs,
        collection_figures.terminal_runs,
        collection_figures.failed_runs / nullif(collection_figures.terminal_runs, 0)::double as failure_rate,
        duration_figures.duration_quantiles[1] as p50_duration_seconds,
        duration_figures.duration_quantiles[2] as p95_duration_seconds,
        duration_figures.exact_duration_runs,
        duration_figures.observed_duration_runs,
        duration_figures.unknown_duration_runs,
        duration_figures.exact_duration_runs / nullif(collection_figures.terminal_runs, 0)::double
            as exact_duration_share,
        duration_figures.observed_duration_runs / nullif(collection_figures.terminal_runs, 0)::double
            as observed_duration_share,
        duration_figures.unknown_duration_runs / nullif(collection_figures.terminal_runs, 0)::double
            as unknown_duration_share,
        duration_figures.exact_duration_quantiles[1] as p50_exact_duration_seconds,
        duration_figures.exact_duration_quantiles[2] as p95_exact_duration_seconds,
        duration_figures.observed_min_duration_seconds,
        duration_figures.observed_max_duration_seconds,
        duration_figures.observed_avg_bracket_seconds,
        space_figures.spaces,
        collection_figures.collections,
        collection_figures.first_created,
        collection_figures.last_created,
        space_figures.last_modified,
        stuck_figures.unchanged_a_day_runs,
        stuck_figures.unchanged_a_day_collections
    from duration_figures
    cross join collection_figures
    cross join space_figures
    cross join stuck_figures
)

select * from final
