-- Each mart has one row per key of its grain (a NULL key is one group of its own).
-- severity: error
with

-- A run's rows are written when a load writes the run: count those of the checked runs.
-- match_key: the run_id, or 'null' for a run without one (it is checked too). Matched by equality, not "is not
-- distinct from": PostgreSQL hashes only the first, and loops over every pair of rows for the second.
checked_ids as (
    select distinct coalesce('id:' || checked_runs.run_id, 'null') as match_key
    from checked_runs
),

duplicates as (
    select 'analytics.run_durations' as relation, durations.run_id as grain_key, count(*) as copies
    from analytics.run_durations as durations
    semi join checked_ids
        on coalesce('id:' || durations.run_id, 'null') = checked_ids.match_key
    group by durations.run_id
    having count(*) > 1
    union all
    select 'analytics.run_stats',
        grain || ': ' || coalesce(cast(day as varchar), 'NULL') || ' ' || coalesce(collection_ref, 'NULL') || ' '
            || coalesce(space_token, 'NULL'),
        count(*)
    from analytics.run_stats
    group by grain, day, collection_ref, space_token
    having count(*) > 1
    union all
    select 'analytics.collection_stats', collection_ref, count(*)
    from analytics.collection_stats
    group by collection_ref
    having count(*) > 1
    union all
    select 'analytics.daily_run_stats', cast(day as varchar) || ' ' || coalesce(collection_ref, 'NULL'), count(*)
    from analytics.daily_run_stats
    group by day, collection_ref
    having count(*) > 1
    union all
    select 'analytics.space_stats', space_token, count(*)
    from analytics.space_stats
    group by space_token
    having count(*) > 1
    union all
    select 'analytics.runs_by_status', status, count(*)
    from analytics.runs_by_status
    group by status
    having count(*) > 1
)

select * from duplicates
