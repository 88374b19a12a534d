-- analytics.time_in_status has one row per run and status, for open statuses only, each seen for a non-negative time (first_seen_at <= last_seen_at) and current in at most one status.
-- severity: error
with

rows_per_key as (
    select times.run_id, times.status, count(*) as copies
    from analytics.time_in_status as times
    group by times.run_id, times.status
),

current_statuses as (
    select times.run_id, count(*) as statuses
    from analytics.time_in_status as times
    where times.is_current
    group by times.run_id
),

offending as (
    select run_id, status, 'more than one row' as problem
    from rows_per_key
    where copies > 1
    union all
    select run_id, cast(statuses as varchar), 'current in more than one status'
    from current_statuses
    where statuses > 1
    union all
    select times.run_id, times.status, 'a terminal status'
    from analytics.time_in_status as times
    inner join analytics.stg_known_statuses as known on known.status = times.status
    where known.is_terminal
    union all
    select times.run_id, times.status, 'seen for a negative time'
    from analytics.time_in_status as times
    where times.min_seconds < 0 or times.first_seen_at > times.last_seen_at
)

select * from offending
