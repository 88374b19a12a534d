-- Within each mart row the status counts add up: completed + failed + partially_completed = terminal, terminal + open = total.
-- severity: error
with

counts as (
    select
        'analytics.collection_stats' as relation,
        collection_ref as grain_key,
        total_runs,
        completed_runs,
        failed_runs,
        partially_completed_runs,
        open_runs,
        terminal_runs
    from analytics.collection_stats
    union all
    select
        'analytics.daily_run_stats',
        cast(day as varchar) || ' ' || coalesce(collection_ref, 'NULL'),
        runs,
        completed_runs,
        failed_runs,
        partially_completed_runs,
        open_runs,
        terminal_runs
    from analytics.daily_run_stats
    union all
    select
        'analytics.space_stats',
        space_token,
        total_runs,
        completed_runs,
        failed_runs,
        partially_completed_runs,
        open_runs,
        terminal_runs
    from analytics.space_stats
),

final as (
    select *
    from counts
    where
        completed_runs + failed_runs + partially_completed_runs != terminal_runs
        or terminal_runs + open_runs != total_runs
)

select * from final
