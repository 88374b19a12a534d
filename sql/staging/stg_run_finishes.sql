-- One row per run_id that unpod.run_status_history knows: what the loads saw of its finish, in the API's clock.
-- The evidence behind finish_source and the duration brackets of stg_runs; empty before the first load wrote the
-- history. Versions are open or terminal by the same rule as stg_runs.
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

versions as (
    select
        cast(run_id as varchar) as run_id,
        cast(modified as timestamptz) as modified,
        cast(first_seen_at as timestamptz) as first_seen_at,
        cast(last_seen_at as timestamptz) as last_seen_at,
        coalesce(cast(status as varchar) in ('completed', 'failed', 'partially_completed'), false) as is_terminal
    from source_history
    where run_id is not null
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
