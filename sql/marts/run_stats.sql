-- One row per group of each grain the stats marts report, and one row over every run.
-- Its grains are (day, collection_ref), day, collection_ref and space_token; column grain says which a row is of.
-- The one place that counts runs, their failure rate and their duration percentiles: collection_stats,
-- daily_run_stats, daily_overall_stats, space_stats and overall_stats each take their grain's rows from here, so
-- the figures are defined once. A run counts in its groups whatever its status; the durations, rates and
-- percentiles are those of its terminal runs. Each grain is refreshed for the groups a changed run left or joined.
-- incremental key: day, collection_ref, space_token
-- columns:
--   grain: the columns the row groups by, comma-separated (day, collection_ref, space_token, or '' for every run).
--   day: the UTC date of created, for a grain by day; NULL otherwise (and for runs without a created).
--   collection_ref: the collection, for a grain by collection; NULL otherwise (and for runs without one).
--   space_token: the space, for the grain by space; NULL otherwise.
--   total_runs: every run of the group, open ones too.
--   completed_runs: runs with status completed.
--   failed_runs: runs with status failed.
--   partially_completed_runs: runs with status partially_completed (terminal, not failed).
--   open_runs: runs in any other status, unknown ones and NULL included.
--   terminal_runs: completed + failed + partially_completed.
--   failure_rate: failed_runs / terminal_runs; NULL when the group has no terminal run.
--   avg_duration_seconds: mean duration of the terminal runs.
--   p50_duration_seconds: median (quantile_cont 0.5) duration of the terminal runs.
--   p95_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the terminal runs.
--   max_duration_seconds: longest duration of a terminal run.
--   exact_duration_runs: terminal runs whose finish_source is modified: the durations most likely exact.
--   observed_duration_runs: terminal runs whose finish_source is observed: known only as a bracket.
--   unknown_duration_runs: terminal runs whose finish_source is unknown: first seen finished with modified = created.
--   p50_exact_duration_seconds: median (quantile_cont 0.5) duration of the exact runs only.
--   p95_exact_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the exact runs only.
--   observed_min_duration_seconds: the least duration_min_seconds of the observed runs.
--   observed_max_duration_seconds: the greatest duration_max_seconds of the observed runs.
--   observed_avg_bracket_seconds: the mean of duration_max_seconds - duration_min_seconds over the observed runs.
--   first_created: earliest created over all runs, open ones too.
--   last_created: latest created over all runs, open ones too.

with

runs as (
    select * from analytics.run_durations
),

aggregated as (
    select
        -- the grain, named by the columns its grouping set holds (grouping(x) = 0 when the set groups by x)
        concat_ws(
            ', ',
            case when grouping(runs.day) = 0 then 'day' end,
            case when grouping(runs.collection_ref) = 0 then 'collection_ref' end,
            case when grouping(runs.space_token) = 0 then 'space_token' end
        ) as grain,
        runs.day,
        runs.collection_ref,
        runs.space_token,
        count(*) as total_runs,
        count(*) filter (where runs.status = 'completed') as completed_runs,
        count(*) filter (where runs.is_failed) as failed_runs,
        count(*) filter (where runs.status = 'partially_completed') as partially_completed_runs,
        count(*) filter (where not runs.is_terminal) as open_runs,
        count(*) filter (where runs.is_terminal) as terminal_runs,
        avg(runs.duration_seconds) as avg_duration_seconds,
        -- both percentiles from one pass over the durations: half the work of two quantile_cont calls
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) as duration_quantiles,
        max(runs.duration_seconds) as max_duration_seconds,
        count(*) filter (where runs.finish_source = 'modified') as exact_duration_runs,
        count(*) filter (where runs.finish_source = 'observed') as observed_duration_runs,
        count(*) filter (where runs.finish_source = 'unknown') as unknown_duration_runs,
        quantile_cont(runs.duration_seconds, [0.5, 0.95]) filter (where runs.finish_source = 'modified')
            as exact_duration_quantiles,
        min(runs.duration_min_seconds) filter (where runs.finish_source = 'observed') as observed_min_duration_seconds,
        max(runs.duration_max_seconds) filter (where runs.finish_source = 'observed') as observed_max_duration_seconds,
        avg(runs.duration_max_seconds - runs.duration_min_seconds) filter (where runs.finish_source = 'observed')
            as observed_avg_bracket_seconds,
        min(runs.created) as first_created,
        max(runs.created) as last_created
    from runs
    group by grouping sets ((runs.day, runs.collection_ref), (runs.day), (runs.collection_ref), (runs.space_token), ())
),

final as (
    select
        grain,
        day,
        collection_ref,
        space_token,
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
        max_duration_seconds,
        exact_duration_runs,
        observed_duration_runs,
        unknown_duration_runs,
        exact_duration_quantiles[1] as p50_exact_duration_seconds,
        exact_duration_quantiles[2] as p95_exact_duration_seconds,
        observed_min_duration_seconds,
        observed_max_duration_seconds,
        observed_avg_bracket_seconds,
        first_created,
        last_created
    from aggregated
)

select * from final
