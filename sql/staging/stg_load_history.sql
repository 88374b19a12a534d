-- One row per load the loader recorded in unpod.load_history.
-- The loads as the loader wrote them, renamed and typed: the columns are there even before the first load writes
-- one. Ephemeral: no relation is built; the builder puts this query into analytics.load_history, which reads it.
-- materialized: ephemeral
-- optional source: unpod.load_history
-- columns:
--   load_id: the load's id (dlt's load id).
--   started_at: when the load started (TIMESTAMPTZ, UTC).
--   finished_at: when the load finished.
--   outcome: how the load ended, as the loader names it.
--   full_scan: true for a --full-scan load that re-read every page.
--   spaces_ok: spaces loaded.
--   spaces_failed: spaces that failed.
--   failed_spaces: the tokens of the spaces that failed.
--   runs_new: runs stored for the first time.
--   runs_updated: runs whose stored version changed.
--   runs_rejected: run items set aside in unpod.runs_rejected.
--   requests: API requests made.
--   retries: API requests retried.
--   duration_seconds: how long the load took, in seconds.

with

-- Typed shape of unpod.load_history, so the model has its columns even before the first load writes one.
load_history_contract as (
    select
        null::varchar as load_id,
        null::timestamptz as started_at,
        null::timestamptz as finished_at,
        null::varchar as outcome,
        null::boolean as full_scan,
        null::integer as spaces_ok,
        null::integer as spaces_failed,
        null::varchar as failed_spaces,
        null::bigint as runs_new,
        null::bigint as runs_updated,
        null::bigint as runs_rejected,
        null::bigint as requests,
        null::bigint as retries,
        null::double as duration_seconds
    where false
),

source_loads as (
    select * from load_history_contract
    union all by name
    select * from unpod.load_history
),

final as (
    select
        cast(load_id as varchar) as load_id,
        cast(started_at as timestamptz) as started_at,
        cast(finished_at as timestamptz) as finished_at,
        cast(outcome as varchar) as outcome,
        cast(full_scan as boolean) as full_scan,
        cast(spaces_ok as integer) as spaces_ok,
        cast(spaces_failed as integer) as spaces_failed,
        cast(failed_spaces as varchar) as failed_spaces,
        cast(runs_new as bigint) as runs_new,
        cast(runs_updated as bigint) as runs_updated,
        cast(runs_rejected as bigint) as runs_rejected,
        cast(requests as bigint) as requests,
        cast(retries as bigint) as retries,
        cast(duration_seconds as double) as duration_seconds
    from source_loads
    where load_id is not null
)

select * from final
