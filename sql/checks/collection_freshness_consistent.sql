-- analytics.collection_freshness has one row for each collection of collection_stats, with the same open runs, and a last completed run exactly where collection_stats counts one.
-- severity: error
with

freshness as (
    select collection_ref, count(*) as copies, min(open_runs) as open_runs, min(last_completed_at) as last_completed_at
    from analytics.collection_freshness
    group by collection_ref
),

offending as (
    select coalesce(stats.collection_ref, freshness.collection_ref) as collection_ref,
        coalesce(freshness.copies, 0) as copies, stats.open_runs as expected_open_runs, freshness.open_runs
    from analytics.collection_stats as stats
    full outer join freshness on freshness.collection_ref is not distinct from stats.collection_ref
    where freshness.copies is distinct from 1
        or stats.open_runs is distinct from freshness.open_runs
        or (stats.completed_runs > 0) is distinct from (freshness.last_completed_at is not null)
)

select * from offending
