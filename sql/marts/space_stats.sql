-- One row per space_token that has runs, named from unpod.spaces where the loader stored the space.
-- The collection_stats figures one level up: which space fails most, which is slowest, which is stale. Its figures
-- are run_stats' rows of grain space_token; the space's collections and latest change are counted from its runs.
-- columns:
--   space_token: the space.
--   space_name: the space's name; NULL when unpod.spaces does not hold it.
--   organization_name: the organization that owns the space; NULL when unknown.
--   collections: distinct collection_ref values among the space's runs (NULL not counted).
--   total_runs: every run of the space, open ones too.
--   completed_runs: runs with status completed.
--   failed_runs: runs with status failed.
--   partially_completed_runs: runs with status partially_completed (terminal, not failed).
--   open_runs: runs in any other status, unknown ones and NULL included.
--   terminal_runs: completed + failed + partially_completed.
--   failure_rate: failed_runs / terminal_runs; NULL when the space has no terminal run.
--   avg_duration_seconds: mean duration of the terminal runs.
--   p50_duration_seconds: median (quantile_cont 0.5) duration of the terminal runs.
--   p95_duration_seconds: 95th percentile (quantile_cont 0.95) duration of the terminal runs.
--   first_created: earliest created over all runs, open ones too.
--   last_created: latest created over all runs, open ones too.
--   last_modified: latest modified over all runs: how fresh the space's data is.


with

stats as (
    select * from analytics.run_stats
),

runs as (
    select * from analytics.stg_runs
),

spaces as (
    select * from analytics.stg_spaces
),

-- What run_stats does not count: how many collections a space has, and when a run of it last changed.
space_runs as (
    select
        runs.space_token,
        count(distinct runs.collection_ref) as collections,
        max(runs.modified) as last_modified
    from runs
    group by runs.space_token
),

final as (
    select
        stats.space_token,
        spaces.space_name,
        spaces.organization_name,
        space_runs.collections,
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
        space_runs.last_modified
    from stats
    left join space_runs on space_runs.space_token is not distinct from stats.space_token
    left join spaces on spaces.space_token = stats.space_token
    where stats.grain = 'space_token'
)

select * from final
