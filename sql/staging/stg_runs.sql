-- One row per run that the API still lists (runs a full scan found gone are left out).
-- The one place that says what a terminal run, a failure, a finish time, a duration and a run's day are;
-- every mart counts from here, so the definitions cannot drift apart.
-- columns:
--   run_id: the run's id (R + 32 hex characters).
--   space_token: the space the run belongs to.
--   collection_ref: the collection the run processed; NULL when the API omitted it.
--   run_mode: prefect, default, dev, prod or test, as the API sent it.
--   status: the status as the API last showed it (NULL when omitted).
--   batch_count: number of batches in the run.
--   created: when the run was created (TIMESTAMPTZ, UTC).
--   modified: when the API last changed the run (TIMESTAMPTZ, UTC).
--   space_id: the space's internal numeric id, as text.
--   user_id: the creating user's id, as text (the API's `user`).
--   thread_id: the thread the run belongs to, if any.
--   is_terminal: status is completed, failed or partially_completed; every other status, NULL too, is open.
--   is_failed: status is failed.
--   is_known_status: status is one the API is known to send (analytics.stg_known_statuses).
--   created_day: the UTC date of created, whatever the reader's TimeZone.
--   finished_at: modified for a terminal run, NULL for an open one.
--   duration_seconds: modified - created in seconds (DOUBLE) for a terminal run, NULL for an open one.

with

-- Typed shape of unpod.runs: union by name fills a column the loader has not created yet with NULL.
runs_contract as (
    select
        null::varchar as run_id,
        null::varchar as space_token,
        null::varchar as collection_ref,
        null::varchar as run_mode,
        null::varchar as status,
        null::bigint as batch_count,
        null::timestamptz as created,
        null::timestamptz as modified,
        null::varchar as space_id,
        null::varchar as "user",
        null::varchar as thread_id,
        null::timestamptz as deleted_at
    where false
),

source_runs as (
    select * from runs_contract
    union all by name
    select * from unpod.runs
),

listed_runs as (
    select
        cast(run_id as varchar) as run_id,
        cast(space_token as varchar) as space_token,
        cast(collection_ref as varchar) as collection_ref,
        cast(run_mode as varchar) as run_mode,
        cast(status as varchar) as status,
        cast(batch_count as bigint) as batch_count,
        cast(created as timestamptz) as created,
        cast(modified as timestamptz) as modified,
        cast(space_id as varchar) as space_id,
        cast("user" as varchar) as user_id,
        cast(thread_id as varchar) as thread_id
    from source_runs
    where deleted_at is null
),

known_statuses as (
    select * from analytics.stg_known_statuses
),

classified as (
    select
        listed_runs.*,
        coalesce(known_statuses.is_terminal, false) as is_terminal,
        coalesce(known_statuses.is_failed, false) as is_failed,
        known_statuses.status is not null as is_known_status
    from listed_runs
    left join known_statuses on known_statuses.status = listed_runs.status
),

final as (
    select
        run_id,
        space_token,
        collection_ref,
        run_mode,
        status,
        batch_count,
        created,
        modified,
        space_id,
        user_id,
        thread_id,
        is_terminal,
        is_failed,
        is_known_status,
        -- at time zone 'UTC' first: a bare ::date would use the reader's session TimeZone
        cast(created at time zone 'UTC' as date) as created_day,
        case when is_terminal then modified end as finished_at,
        case
            when is_terminal then (epoch_us(modified) - epoch_us(created)) / 1e6
        end as duration_seconds
    from classified
)

select * from final
