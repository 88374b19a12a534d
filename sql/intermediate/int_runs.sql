-- One row per run that the API still lists, with what its status and timestamps mean.
-- The one place that says what a terminal run, a failure, a finish time, a duration and a run's day are (SPEC.md):
-- every mart and check that asks reads them here, so the definitions cannot drift apart. Which statuses end a run,
-- and which of those is a failure, comes from analytics.stg_known_statuses; a status not listed there, or none, is
-- open.
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
--   day: the UTC date of created, whatever the reader's TimeZone.
--   finished_at: modified for a terminal run, NULL for an open one.
--   duration_seconds: modified - created in seconds (DOUBLE) for a terminal run, NULL for an open one.

with

runs as (
    select * from analytics.stg_runs
),

known_statuses as (
    select * from analytics.stg_known_statuses
),

classified as (
    select
        runs.*,
        coalesce(known_statuses.is_terminal, false) as is_terminal,
        coalesce(known_statuses.is_failed, false) as is_failed,
        known_statuses.status is not null as is_known_status
    from runs
    left join known_statuses on known_statuses.status = runs.status
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
        cast(created at time zone 'UTC' as date) as day,
        case when is_terminal then modified end as finished_at,
        case
            when is_terminal then (epoch_us(modified) - epoch_us(created)) / 1e6
        end as duration_seconds
    from classified
)

select * from final
