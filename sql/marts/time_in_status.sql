-- One row per listed run and open status that a load saw it in (runs first seen terminal have none).
-- How long each run waited, ran or was held, as the loads saw it in the API's clock: the truth lies within
-- [min_seconds, max_seconds]. With nightly loads the brackets are a day wide; with hourly loads an hour. A run that
-- left a status and came back to it sums its spells.
-- columns:
--   run_id: the run's id.
--   space_token: the space the run belongs to.
--   collection_ref: the collection the run processes; NULL when the API omitted it.
--   status: the open status (unknown and NULL statuses included).
--   phase: queued (pending, scheduled), running (running, in_progress), held (hold), other.
--   spells: how many separate times a load saw the run enter this status (almost always 1).
--   first_seen_at: when a load first saw the run in this status (API clock).
--   last_seen_at: when a load last saw the run in this status (API clock).
--   is_current: the run is in this status now (at the last load that saw it).
--   left_by: when a load first saw the run in its next status; NULL while it is still in this one.
--   min_seconds: at least this long in the status: from its first to its last sighting there, in seconds.
--   max_seconds: at most this long: from the last sighting of its previous status (or created) to the first sighting of the next one (or, still in it, the last load), in seconds.

with

spells as (
    select * from analytics.int_status_spells
),

final as (
    select
        spells.run_id,
        min(spells.space_token) as space_token,
        min(spells.collection_ref) as collection_ref,
        spells.status,
        min(spells.phase) as phase,
        count(*) as spells,
        min(spells.entered_by) as first_seen_at,
        max(spells.left_after) as last_seen_at,
        bool_or(spells.left_by is null) as is_current,
        case when bool_or(spells.left_by is null) then null else max(spells.left_by) end as left_by,
        sum(spells.min_seconds) as min_seconds,
        sum(spells.max_seconds) as max_seconds
    from spells
    group by spells.run_id, spells.status
)

select * from final
