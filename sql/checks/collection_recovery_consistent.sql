-- analytics.collection_recovery has one row per collection; recovered incidents <= incidents <= failed runs, the mean time to recovery lies within [0, max], and a collection is failing now exactly when it has an unrecovered incident.
-- severity: error
with

offending as (
    select collection_ref, 'more than one row' as problem
    from analytics.collection_recovery
    group by collection_ref
    having count(*) > 1
    union all
    select collection_ref, 'incident counts that do not add up'
    from analytics.collection_recovery
    where recovered_incidents > incidents or incidents > failed_runs
        or (failed_runs > 0) <> (incidents > 0)
        or incidents - recovered_incidents > 1
        or is_failing_now <> (incidents > recovered_incidents)
        or is_failing_now <> (failures_since_last_completed > 0)
    union all
    select collection_ref, 'a recovery time outside [0, max]'
    from analytics.collection_recovery
    where mean_time_to_recovery_seconds < 0 or mean_time_to_recovery_seconds > max_time_to_recovery_seconds
        or (recovered_incidents = 0) <> (mean_time_to_recovery_seconds is null)
)

select * from offending
