-- One row per spell of a listed run in an open status: consecutive versions of the status history in one status.
-- What the loads saw of how long a run waited and ran, in the API's clock, behind time_in_status and
-- collection_time_in_status. Only runs some load saw open have spells; a run first seen terminal has none. A spell's
-- bounds are certain: the run was in the status at every load that saw it there (min_seconds), and cannot have been
-- in it before the previous spell was last seen (or before created) nor after the next spell was first seen
-- (max_seconds). It assumes a run does not go back to a version (status and modified) it had left.
-- materialized: table
-- incremental key: run_id
-- columns:
--   run_id: the run's id.
--   space_token: the space the run belongs to.
--   collection_ref: the collection the run processes; NULL when the API omitted it.
--   spell_number: 1 for the run's first status a load saw, counting up at each change of status.
--   status: the open status of the spell (unknown and NULL statuses included).
--   phase: queued, running or held, as analytics.stg_known_statuses says of the status; other for any other status.
--   entered_after: last_seen_at of the run's previous spell; created for its first: it entered the status after this.
--   entered_by: first_seen_at of the spell's first version: it was in the status by then.
--   left_after: last_seen_at of the spell's last version: it was still in the status then.
--   left_by: first_seen_at of the run's next spell: it had left by then; NULL while the run is still in the status.
--   min_seconds: left_after - entered_by, in seconds: at least this long in the status.
--   max_seconds: the later of left_by and left_after, minus entered_after, in seconds: at most this long (for a spell still going on, up to the last load that saw it).

with

history as (
    select * from analytics.stg_status_history
),

runs as (
    select * from analytics.stg_runs
),

known_statuses as (
    select * from analytics.stg_known_statuses
),

-- Read twice below, each time where it is used: not materialized, so no copy of the whole history is made.
versions as not materialized (
    select
        history.*,
        coalesce(known_statuses.is_terminal, false) as is_terminal,
        coalesce(known_statuses.phase, 'other') as phase
    from history
    left join known_statuses on known_statuses.status = history.status
),

-- Most runs are first seen terminal and have no open spell: leave them out before sorting anything.
seen_open as (
    select distinct versions.run_id
    from versions
    where not versions.is_terminal
),

ordered as (
    select
        versions.*,
        lag(versions.status) over (
            partition by versions.run_id order by versions.first_seen_at, versions.modified
        ) as previous_status,
        row_number() over (
            partition by versions.run_id order by versions.first_seen_at, versions.modified
        ) as version_number
    from versions
    inner join seen_open on seen_open.run_id = versions.run_id
),

-- A spell starts at each version whose status differs from the version before it.
numbered as (
    select
        ordered.*,
        sum(case when ordered.version_number > 1 and ordered.previous_status is not distinct from ordered.status
            then 0 else 1 end) over (
            partition by ordered.run_id order by ordered.version_number rows between unbounded preceding and current row
        ) as spell_number
    from ordered
),

spells as (
    select
        numbered.run_id,
        numbered.spell_number,
        min(numbered.status) as status,
        min(numbered.phase) as phase,
        bool_and(numbered.is_terminal) as is_terminal,
        min(numbered.first_seen_at) as entered_by,
        max(numbered.last_seen_at) as left_after
    from numbered
    group by numbered.run_id, numbered.spell_number
),

bounded as (
    select
        spells.*,
        lag(spells.left_after) over (partition by spells.run_id order by spells.spell_number) as previous_left_after,
        lead(spells.entered_by) over (partition by spells.run_id order by spells.spell_number) as left_by
    from spells
),

final as (
    select
        bounded.run_id,
        runs.space_token,
        runs.collection_ref,
        bounded.spell_number,
        bounded.status,
        bounded.phase,
        coalesce(bounded.previous_left_after, runs.created) as entered_after,
        bounded.entered_by,
        bounded.left_after,
        bounded.left_by,
        extract(epoch from bounded.left_after) - extract(epoch from bounded.entered_by) as min_seconds,
        extract(epoch from greatest(bounded.left_after, coalesce(bounded.left_by, bounded.left_after)))
            - extract(epoch from coalesce(bounded.previous_left_after, runs.created)) as max_seconds
    from bounded
    inner join runs on runs.run_id = bounded.run_id
    where not bounded.is_terminal
)

select * from final
