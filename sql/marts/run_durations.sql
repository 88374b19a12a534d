-- One row per run that the API still lists, with its finish time and duration once it is terminal.
-- The per-run detail behind every duration and failure figure: filter it, histogram it, join it. The marts that
-- count runs by group read it too: the one place where a run's figures meet its finish evidence.
-- incremental key: run_id
-- columns:
--   run_id: the run's id.
--   space_token: the space the run belongs to.
--   collection_ref: the collection the run processed; NULL when the API omitted it.
--   run_mode: prefect, default, dev, prod or test, as the API sent it.
--   status: the status as the API last showed it.
--   created: when the run was created (TIMESTAMPTZ, UTC).
--   finished_at: modified for a terminal run (completed, failed, partially_completed), NULL for an open one.
--   duration_seconds: modified - created in seconds for a terminal run, NULL for an open one.
--   day: the UTC date of created.
--   is_terminal: status is completed, failed or partially_completed.
--   is_failed: status is failed.
--   finish_source: modified, observed or unknown for a terminal run (NULL for an open one): modified marks the durations most likely exact; see SPEC.md.
--   finished_after: last_seen_at of the run's last version seen open (NULL if never seen open): it finished after this.
--   finished_by: first_seen_at of its first version seen terminal: it had finished by then.
--   duration_min_seconds: the later of modified and finished_after, minus created (seconds).
--   duration_max_seconds: finished_by - created (seconds); the true duration lies within [duration_min_seconds, duration_max_seconds].

with

runs as (
    select * from analytics.int_runs
),

finishes as (
    select * from analytics.int_run_finishes
),

-- What the loads saw of each terminal run's finish (SPEC.md: finish_source and the duration brackets).
witnessed as (
    select
        runs.*,
        case when runs.is_terminal then finishes.finished_after end as finished_after,
        case when runs.is_terminal then finishes.finished_by end as finished_by,
        case
            when not runs.is_terminal then null
            when finishes.finished_after is not null and runs.modified = finishes.last_open_modified
                then 'observed'
            when finishes.finished_after is not null then 'modified'
            when runs.modified > runs.created then 'modified'
            else 'unknown'
        end as finish_source
    from runs
    left join finishes on finishes.run_id = runs.run_id
),

final as (
    select
        witnessed.run_id,
        witnessed.space_token,
        witnessed.collection_ref,
        witnessed.run_mode,
        witnessed.status,
        witnessed.created,
        witnessed.finished_at,
        witnessed.duration_seconds,
        witnessed.day,
        witnessed.is_terminal,
        witnessed.is_failed,
        witnessed.finish_source,
        witnessed.finished_after,
        witnessed.finished_by,
        case
            when witnessed.is_terminal
                then (epoch_us(greatest(witnessed.modified, coalesce(witnessed.finished_after, witnessed.modified)))
                      - epoch_us(witnessed.created)) / 1e6
        end as duration_min_seconds,
        (epoch_us(witnessed.finished_by) - epoch_us(witnessed.created)) / 1e6 as duration_max_seconds
    from witnessed
)

select * from final
