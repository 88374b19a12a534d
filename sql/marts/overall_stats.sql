-- One row per database: every run the API still lists, taken together.
-- The headline figures of the whole organization, as the report shows them: how many runs, how many failed, how
-- long they took, how far those durations can be trusted, and how many open runs have not moved for a day. Its
-- figures are run_stats' row over every run (grain ''); the spaces, the collections, the latest change and the
-- stuck runs are read from the marts that hold them (a few rows each).
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

stats as (
    select * from analytics.run_stats
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

every_run as (
    select * from stats where stats.grain = ''
),

collection_figures as (
    select count(*) as collections
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
        every_run.total_runs,
        every_run.completed_runs,
        every_run.failed_runs,
        every_run.partially_completed_runs,
        every_run.open_runs,
        every_run.terminal_runs,
        every_run.failure_rate,
        every_run.p50_duration_seconds,
        every_run.p95_duration_seconds,
        every_run.exact_duration_runs,
        every_run.observed_duration_runs,
        every_run.unknown_duration_runs,
        every_run.exact_duration_runs / nullif(every_run.terminal_runs, 0)::double as exact_duration_share,
        every_run.observed_duration_runs / nullif(every_run.terminal_runs, 0)::double as observed_duration_share,
        every_run.unknown_duration_runs / nullif(every_run.terminal_runs, 0)::double as unknown_duration_share,
        every_run.p50_exact_duration_seconds,
        every_run.p95_exact_duration_seconds,
        every_run.observed_min_duration_seconds,
        every_run.observed_max_duration_seconds,
        every_run.observed_avg_bracket_seconds,
        space_figures.spaces,
        collection_figures.collections,
        every_run.first_created,
        every_run.last_created,
        space_figures.last_modified,
        stuck_figures.unchanged_a_day_runs,
        stuck_figures.unchanged_a_day_collections
    from every_run
    cross join collection_figures
    cross join space_figures
    cross join stuck_figures
)

select * from final
