-- One row per version (status, modified) of a run that a load saw, from unpod.run_status_history.
-- The status history as the loader stored it, renamed and typed; nothing more. Empty before the first load wrote
-- the history. What the versions say of a run's finish and of its time in each status is
-- analytics.int_run_finishes and analytics.int_status_spells. Ephemeral: no relation is built; the builder puts
-- this query into the models that read it, so the history is typed in one place and not copied.
-- materialized: ephemeral
-- optional source: unpod.run_status_history
-- columns:
--   run_id: the run's id.
--   status: the version's status (NULL when the API omitted it).
--   modified: the version's modified.
--   first_seen_at: the API's clock at the first load that saw this version.
--   last_seen_at: the API's clock at the last load that saw this version.

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

final as (
    select
        cast(run_id as varchar) as run_id,
        cast(status as varchar) as status,
        cast(modified as timestamptz) as modified,
        cast(first_seen_at as timestamptz) as first_seen_at,
        cast(last_seen_at as timestamptz) as last_seen_at
    from source_history
    where run_id is not null
)

select * from final
