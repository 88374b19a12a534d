-- One row per run that the API still lists, with its finish time and duration once it is terminal.
-- The per-run detail behind every duration and failure figure: filter it, histogram it, join it.
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
    select * from analytics.stg_runs
),

final as (
    select
        runs.run_id,
        runs.space_token,
        runs.collection_ref,
        runs.run_mode,
        runs.status,
        runs.created,
        runs.finished_at,
        runs.duration_seconds,
        runs.created_day as day,
        runs.is_terminal,
        runs.is_failed,
        runs.finish_source,
        runs.finished_after,
        runs.finished_by,
        runs.duration_min_seconds,
        runs.duration_max_seconds
    from runs
)

select * from final
