-- One row per collection_ref (NULL is its own group) with a completed or failed run finished in the last 30 days.
-- How fast a collection recovers from failures: a mean time to recovery over the last 30 days (720 hours before
-- as_of, the API's clock at the latest load): recent behaviour, and a night's cost that does not grow with the
-- years of history. The completed and failed runs of a collection that finished in that window are taken in the
-- order they finished; an incident starts at a failed run that follows a completed one (or no run at all) and ends
-- at the next completed run; its recovery time is from the finish of its first failed run to the finish of that
-- completed run. partially_completed runs neither start nor end an incident. A run's finish is the earliest moment
-- it can have finished: the later of finished_at (its modified) and finished_after (created +
-- duration_min_seconds), so a finish the API did not bump is not taken for an earlier one. An incident older than
-- the window counts from its first failure inside it.
-- columns:
--   collection_ref: the collection; NULL groups the runs that came without one.
--   as_of: the API's clock at the latest load (the latest last_seen_at of the status history; before there is a history, the latest finished_at or created).
--   failed_runs: failed runs of the collection that finished in the window.
--   incidents: runs of consecutive failures (each ended by a completed run, or still going on).
--   recovered_incidents: incidents that a completed run ended.
--   mean_time_to_recovery_seconds: mean recovery time of the recovered incidents, in seconds.
--   p50_time_to_recovery_seconds: median (continuous) recovery time of the recovered incidents.
--   max_time_to_recovery_seconds: the longest recovery time.
--   is_failing_now: the collection's latest completed-or-failed run failed: an incident is going on.
--   failing_since: the finish of the first failed run of the incident going on; NULL when none is.
--   failures_since_last_completed: failed runs in the incident going on (0 when none is).

with

-- The run index, built first among the marts: a table, far cheaper to scan than the int_runs view. Read where it is
-- used (not materialized): a copy of every run would cost more than the scans.
runs as not materialized (
    select * from analytics.run_durations
),

clock as (
    select * from analytics.int_api_clock
),

-- The window's runs in two parts, each a plain comparison on one column: the scans skip the older row groups.
recent as (
    select runs.*
    from runs
    cross join clock
    where runs.status in ('completed', 'failed') and runs.finished_at > clock.as_of - interval '720 hours'
    union all
    select runs.*
    from runs
    cross join clock
    where runs.status in ('completed', 'failed') and runs.finished_at <= clock.as_of - interval '720 hours'
        and runs.finished_after > clock.as_of - interval '720 hours'
),

finished as (
    select
        recent.collection_ref,
        recent.run_id,
        recent.is_failed,
        greatest(recent.finished_at, coalesce(recent.finished_after, recent.finished_at)) as finished_at
    from recent
),

-- For each failed run, the next completed run of its collection: the failures it shares it with are one incident.
followed as (
    select
        finished.*,
        min(case when not finished.is_failed then finished.finished_at end) over (
            partition by finished.collection_ref order by finished.finished_at, finished.run_id
            rows between 1 following and unbounded following
        ) as recovered_at
    from finished
),

incidents as (
    select
        followed.collection_ref,
        followed.recovered_at,
        min(followed.finished_at) as first_failed_at,
        count(*) as failed_runs
    from followed
    where followed.is_failed
    group by followed.collection_ref, followed.recovered_at
),

collections as (
    select
        finished.collection_ref,
        count(*) filter (where finished.is_failed) as failed_runs
    from finished
    group by finished.collection_ref
),

recovery as (
    select
        incidents.collection_ref,
        count(*) as incidents,
        count(incidents.recovered_at) as recovered_incidents,
        avg(extract(epoch from incidents.recovered_at) - extract(epoch from incidents.first_failed_at))
            as mean_time_to_recovery_seconds,
        percentile_cont(0.5) within group (
            order by extract(epoch from incidents.recovered_at) - extract(epoch from incidents.first_failed_at)
        ) as p50_time_to_recovery_seconds,
        max(extract(epoch from incidents.recovered_at) - extract(epoch from incidents.first_failed_at))
            as max_time_to_recovery_seconds,
        min(incidents.first_failed_at) filter (where incidents.recovered_at is null) as failing_since,
        cast(coalesce(sum(incidents.failed_runs) filter (where incidents.recovered_at is null), 0) as bigint)
            as failures_since_last_completed
    from incidents
    group by incidents.collection_ref
),

final as (
    select
        collections.collection_ref,
        clock.as_of,
        collections.failed_runs,
        coalesce(recovery.incidents, 0) as incidents,
        coalesce(recovery.recovered_incidents, 0) as recovered_incidents,
        recovery.mean_time_to_recovery_seconds,
        recovery.p50_time_to_recovery_seconds,
        recovery.max_time_to_recovery_seconds,
        recovery.failing_since is not null as is_failing_now,
        recovery.failing_since,
        coalesce(recovery.failures_since_last_completed, 0) as failures_since_last_completed
    from collections
    left join recovery on recovery.collection_ref is not distinct from collections.collection_ref
    cross join clock
)

select * from final
