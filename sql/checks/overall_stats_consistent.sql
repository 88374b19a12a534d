-- analytics.overall_stats is one row whose run counts are the sums of collection_stats, with the spaces of space_stats and the collections of collection_stats, a failure rate and shares that are its own counts divided, and no more runs unchanged for a day than are open.
-- severity: error
with

collections as (
    select
        count(*) as collections,
        coalesce(sum(total_runs), 0) as total_runs,
        coalesce(sum(completed_runs), 0) as completed_runs,
        coalesce(sum(failed_runs), 0) as failed_runs,
        coalesce(sum(partially_completed_runs), 0) as partially_completed_runs,
        coalesce(sum(open_runs), 0) as open_runs,
        coalesce(sum(terminal_runs), 0) as terminal_runs
    from analytics.collection_stats
),

spaces as (
    select count(space_token) as spaces
    from analytics.space_stats
),

offending as (
    select 'not exactly one row' as problem
    from analytics.overall_stats
    having count(*) <> 1
    union all
    select 'counts that differ from collection_stats and space_stats'
    from analytics.overall_stats as overall
    cross join collections
    cross join spaces
    where overall.total_runs <> collections.total_runs
        or overall.completed_runs <> collections.completed_runs
        or overall.failed_runs <> collections.failed_runs
        or overall.partially_completed_runs <> collections.partially_completed_runs
        or overall.open_runs <> collections.open_runs
        or overall.terminal_runs <> collections.terminal_runs
        or overall.collections <> collections.collections
        or overall.spaces <> spaces.spaces
    union all
    select 'a rate or share that is not its counts divided'
    from analytics.overall_stats as overall
    where overall.failure_rate is distinct from overall.failed_runs / nullif(overall.terminal_runs, 0)::double
        or overall.exact_duration_share
            is distinct from overall.exact_duration_runs / nullif(overall.terminal_runs, 0)::double
        or overall.observed_duration_share
            is distinct from overall.observed_duration_runs / nullif(overall.terminal_runs, 0)::double
        or overall.unknown_duration_share
            is distinct from overall.unknown_duration_runs / nullif(overall.terminal_runs, 0)::double
        or overall.exact_duration_runs + overall.observed_duration_runs + overall.unknown_duration_runs
            <> overall.terminal_runs
    union all
    select 'more runs unchanged for a day than are open'
    from analytics.overall_stats as overall
    where overall.unchanged_a_day_runs > overall.open_runs
        or overall.unchanged_a_day_collections > overall.unchanged_a_day_runs
)

select * from offending
