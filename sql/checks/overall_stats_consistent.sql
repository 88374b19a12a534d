-- analytics.overall_stats is one row whose run counts are the sums of space_stats (built from the runs apart from collection_stats), with the spaces of space_stats and the collections of collection_stats, every terminal run in one finish source, a failure rate and shares that are its own counts divided, and no more runs unchanged for a day than are open.
-- severity: error
with

spaces as (
    select
        count(space_token) as spaces,
        coalesce(sum(total_runs), 0) as total_runs,
        coalesce(sum(completed_runs), 0) as completed_runs,
        coalesce(sum(failed_runs), 0) as failed_runs,
        coalesce(sum(partially_completed_runs), 0) as partially_completed_runs,
        coalesce(sum(open_runs), 0) as open_runs,
        coalesce(sum(terminal_runs), 0) as terminal_runs
    from analytics.space_stats
),

collections as (
    select count(*) as collections
    from analytics.collection_stats
),

offending as (
    select 'not exactly one row' as problem
    from analytics.overall_stats
    having count(*) <> 1
    union all
    select 'counts that differ from space_stats and collection_stats'
    from analytics.overall_stats as overall
    cross join spaces
    cross join collections
    where overall.total_runs <> spaces.total_runs
        or overall.completed_runs <> spaces.completed_runs
        or overall.failed_runs <> spaces.failed_runs
        or overall.partially_completed_runs <> spaces.partially_completed_runs
        or overall.open_runs <> spaces.open_runs
        or overall.terminal_runs <> spaces.terminal_runs
        or overall.spaces <> spaces.spaces
        or overall.collections <> collections.collections
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
