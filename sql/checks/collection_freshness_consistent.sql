-- analytics.collection_freshness has one row for each collection of collection_stats, with the same open runs, and a last completed run exactly where collection_stats counts one.
-- severity: error
with

-- match_key: the collection, or 'null' for the runs without one (they must match too); PostgreSQL runs a full outer
-- join on equality only, not on "is not distinct from"
stats as (
    select *, coalesce('ref:' || collection_ref, 'null') as match_key
    from analytics.collection_stats
),

freshness as (
    select collection_ref, coalesce('ref:' || collection_ref, 'null') as match_key, count(*) as copies,
        min(open_runs) as open_runs, min(last_completed_at) as last_completed_at
    from analytics.collection_freshness
    group by collection_ref
),

offending as (
    select coalesce(stats.collection_ref, freshness.collection_ref) as collection_ref,
        coalesce(freshness.copies, 0) as copies, stats.open_runs as expected_open_runs, freshness.open_runs
    from stats
    full outer join freshness on freshness.match_key = stats.match_key
    where freshness.copies is distinct from 1
        or stats.open_runs is distinct from freshness.open_runs
        or (stats.completed_runs > 0) is distinct from (freshness.last_completed_at is not null)
)

select * from offending
