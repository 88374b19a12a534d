-- One row per run_id that the status history knows: what the loads saw of its finish, in the API's clock.
-- The evidence behind run_durations' finish_source and duration brackets; empty before the first load wrote the
-- history. Versions are open or terminal by analytics.stg_known_statuses, as runs are in int_runs.
-- materialized: table
-- incremental key: run_id
-- columns:
--   run_id: the run's id.
--   finished_after: last_seen_at of the run's last version seen open; NULL if no load saw it open.
--   last_open_modified: modified of that last open version; NULL if no load saw it open.
--   finished_by: first_seen_at of the run's first version seen terminal; NULL if no load saw it terminal.
--   last_seen_at: the API's clock at the last load that saw the run.
--   last_change_seen_at: first_seen_at of the run's latest version: when a load first saw its last change.

with

history as (
    select * from analytics.stg_status_history
),

known_statuses as (
    select * from analytics.stg_known_statuses
),

versions as (
    select
        history.run_id,
        history.modified,
        history.first_seen_at,
        history.last_seen_at,
        coalesce(known_statuses.is_terminal, false) as is_terminal
    from history
    left join known_statuses on known_statuses.status = history.status
),

final as (
    select
        versions.run_id,
        max(versions.last_seen_at) filter (where not versions.is_terminal) as finished_after,
        -- modified never moves back, so the last open version holds the latest one
        max(versions.modified) filter (where not versions.is_terminal) as last_open_modified,
        min(versions.first_seen_at) filter (where versions.is_terminal) as finished_by,
        max(versions.last_seen_at) as last_seen_at,
        max(versions.first_seen_at) as last_change_seen_at
    from versions
    group by versions.run_id
)

select * from final
