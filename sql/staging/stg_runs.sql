-- One row per run that the API still lists (runs a full scan found gone are left out).
-- The runs as the loader stored them, renamed and typed; nothing more. What their statuses and timestamps mean
-- (terminal, failed, finish, duration, day) is analytics.int_runs, which every mart counts from.
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

final as (
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
)

select * from final
