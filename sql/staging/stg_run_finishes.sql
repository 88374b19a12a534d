-- One row per run_id that unpod.run_status_history knows: what the loads saw of its finish, in the API's clock.
-- The evidence behind finish_source and the duration brackets of stg_runs; empty before the first load wrote the
-- history. Versions are open or terminal by analytics.stg_known_statuses, as runs are in stg_runs.
-- materialized: table
-- incremental key: run_id
-- optional source: unpod.run_status_history
-- columns:
--   run_id: the run's id.
--   finished_after: last_seen_at of the run's last version seen open; NULL if no load saw it open.
--   last_open_modified: modified of that last open version; NULL if no load saw it open.
--   finished_by: first_seen_at of the run's first version seen terminal; NULL if no load saw it terminal.
--   last_seen_at: the API's clock at the last load that saw the run.
--   last_change_seen_at: first_seen_at of the run's latest version: when a load first saw its last change.

with

-- Typed shape of unpod.run_status_history: union by name fills a column the loader has not created yet with NULL.
history_contract as (
    select
        null::varchar as run_id,
        null::varchar as status,
        null::timestamptz as modified,
        null::timestamptz as first_seen_at,
        null::timestamptz as last_seen_at
    where false
),

source_history as (
    select * from history_contract
    union all by name
    select * from unpod.run_status_history
),

known_statuses as (
    select * from analytics.stg_known_statuses
),

versions as (
    select
        cast(source_history.run_id as varchar) as run_id,
        cast(source_history.modified as timestamptz) as modified,
        cast(source_history.first_seen_at as timestamptz) as first_seen_at,
        cast(source_history.last_seen_at as timestamptz) as last_seen_at,
        coalesce(known_statuses.is_terminal, false) as is_terminal
    from source_history
    left join known_statuses on known_statuses.status = cast(source_history.status as varchar)
    where source_history.run_id is not null
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
