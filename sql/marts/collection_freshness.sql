-- One row per collection_ref (NULL is its own group) that has runs.
-- Is the collection still delivering: how long since its last run completed, and since its last run was created,
-- measured at as_of, the API's clock at the latest load (so the figures do not move between loads, nor with the
-- reader's clock). A completed run's finish is the earliest moment it can have finished (the later of finished_at
-- (its modified) and finished_after): the time since it is an upper bound when the API did not bump the finish.
-- columns:
--   collection_ref: the collection; NULL groups the runs that came without one.
--   as_of: the API's clock at the latest load (the latest last_seen_at of the status history; before there is a history, the latest finished_at or created).
--   last_completed_at: the finish of the collection's latest completed run; NULL when none completed.
--   seconds_since_last_completed: as_of - last_completed_at, in seconds.
--   last_created: when the collection's newest run was created.
--   seconds_since_last_created: as_of - last_created, in seconds.
--   open_runs: runs of the collection open now.

with

-- The run index, built first among the marts: a table, far cheaper to scan than the int_runs view. Read where it is
-- used (not materialized): a copy of every run would cost more than the scans.
runs as not materialized (
    select * from analytics.run_durations
),

clock as (
    select * from analytics.int_api_clock
),

aggregated as (
    select
        runs.collection_ref,
        max(greatest(runs.finished_at, coalesce(runs.finished_after, runs.finished_at)))
            filter (where runs.status = 'completed') as last_completed_at,
        max(runs.created) as last_created,
        count(*) filter (where not runs.is_terminal) as open_runs
    from runs
    group by runs.collection_ref
),

final as (
    select
        aggregated.collection_ref,
        clock.as_of,
        aggregated.last_completed_at,
        extract(epoch from clock.as_of) - extract(epoch from aggregated.last_completed_at)
            as seconds_since_last_completed,
        aggregated.last_created,
        extract(epoch from clock.as_of) - extract(epoch from aggregated.last_created) as seconds_since_last_created,
        aggregated.open_runs
    from aggregated
    cross join clock
)

select * from final
