-- analytics.collection_time_in_status has one row per collection, and each median's lower bound is at most its upper bound, present exactly when runs count in it.
-- severity: error
with

offending as (
    select collection_ref, 'more than one row' as problem
    from analytics.collection_time_in_status
    group by collection_ref
    having count(*) > 1
    union all
    select collection_ref, 'a queued median below zero, above its upper bound, or without runs'
    from analytics.collection_time_in_status
    where p50_queued_min_seconds < 0 or p50_queued_min_seconds > p50_queued_max_seconds
        or (queued_runs = 0) <> (p50_queued_min_seconds is null)
    union all
    select collection_ref, 'a running median below zero, above its upper bound, or without runs'
    from analytics.collection_time_in_status
    where p50_running_min_seconds < 0 or p50_running_min_seconds > p50_running_max_seconds
        or (running_runs = 0) <> (p50_running_min_seconds is null)
)

select * from offending
