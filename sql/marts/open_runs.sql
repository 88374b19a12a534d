-- One row per run that is open now (any status but completed, failed and partially_completed).
-- The list of stuck runs: how old each is and how long it has gone unchanged, by collection and space. Ages are
-- measured in the API's clock at the last load that saw the run, so they do not move between loads.
-- columns:
--   run_id: the run's id.
--   space_token: the space the run belongs to.
--   space_name: the space's name; NULL when unpod.spaces does not know it.
--   collection_ref: the collection the run processes; NULL when the API omitted it.
--   run_mode: prefect, default, dev, prod or test, as the API sent it.
--   status: its open status as the API last showed it (unknown and NULL statuses included).
--   created: when the run was created (TIMESTAMPTZ, UTC).
--   modified: when the API last changed the run, as it says (a status change may not move it).
--   last_seen_at: the API's clock at the last load that saw the run open; NULL before the status history knew it.
--   last_change_seen_at: when a load first saw its current status and modified (the change happened by then).
--   age_seconds: last_seen_at - created, in seconds.
--   unchanged_for_seconds: last_seen_at - the later of modified and last_change_seen_at, in seconds: it has been in its current status and modified at least this long.

with

runs as (
    select * from analytics.int_runs
),

finishes as (
    select * from analytics.int_run_finishes
),

spaces as (
    select * from analytics.stg_spaces
),

final as (
    select
        runs.run_id,
        runs.space_token,
        spaces.space_name,
        runs.collection_ref,
        runs.run_mode,
        runs.status,
        runs.created,
        runs.modified,
        finishes.last_seen_at,
        finishes.last_change_seen_at,
        (epoch_us(finishes.last_seen_at) - epoch_us(runs.created)) / 1e6 as age_seconds,
        (
            epoch_us(finishes.last_seen_at)
            - epoch_us(greatest(runs.modified, coalesce(finishes.last_change_seen_at, runs.modified)))
        ) / 1e6 as unchanged_for_seconds
    from runs
    left join finishes on finishes.run_id = runs.run_id
    left join spaces on spaces.space_token = runs.space_token
    where not runs.is_terminal
)

select * from final
