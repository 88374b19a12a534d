-- One row per space_token that has runs, named from unpod.spaces where the loader stored the space.
-- The collection_stats figures one level up: which space fails most, which is slowest, which is stale.
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

runs as (
    select * from analytics.int_runs
),

spaces as (
    select * from analytics.stg_spaces
),

aggregated as (
    select
        runs.space_token,
        count(distinct runs.collection_ref) as collections,
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
        max(runs.modified) as last_modified
    from runs
    group by runs.space_token
),

final as (
    select
        aggregated.space_token,
        spaces.space_name,
        spaces.organization_name,
        aggregated.collections,
        aggregated.total_runs,
        aggregated.completed_runs,
        aggregated.failed_runs,
        aggregated.partially_completed_runs,
        aggregated.open_runs,
        aggregated.terminal_runs,
        aggregated.failed_runs / nullif(aggregated.terminal_runs, 0)::double as failure_rate,
        aggregated.avg_duration_seconds,
        aggregated.duration_quantiles[1] as p50_duration_seconds,
        aggregated.duration_quantiles[2] as p95_duration_seconds,
        aggregated.first_created,
        aggregated.last_created,
        aggregated.last_modified
    from aggregated
    left join spaces
        on aggregated.space_token = spaces.space_token
)

select * from final
