-- Every rate and share in the marts lies in [0, 1].
-- severity: error
with

rates as (
    select 'analytics.collection_stats' as relation, collection_ref as grain_key, failure_rate as rate
    from analytics.collection_stats
    union all
    select 'analytics.daily_run_stats', cast(day as varchar) || ' ' || coalesce(collection_ref, 'NULL'), failure_rate
    from analytics.daily_run_stats
    union all
    select 'analytics.space_stats', space_token, failure_rate
    from analytics.space_stats
    union all
    select 'analytics.runs_by_status', status, share_of_runs
    from analytics.runs_by_status
),

final as (
    select relation, grain_key, rate
    from rates
    -- NaN equals itself on DuckDB and PostgreSQL alike, which have no common isnan()
    where rate < 0 or rate > 1 or rate = cast('NaN' as double)
)

select * from final
