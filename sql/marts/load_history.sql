-- One row per load the loader recorded in unpod.load_history, as it wrote it.
-- When the data was last refreshed and whether that night went well: the freshness behind every other model.
-- materialized: table
-- columns:
--   load_id: the load's id (dlt's load id).
--   started_at: when the load started (TIMESTAMPTZ, UTC).
--   finished_at: when the load finished.
--   outcome: how the load ended, as the loader names it.
--   full_scan: true for a --full-scan load that re-read every page.
--   spaces_ok: spaces loaded.
--   spaces_failed: spaces that failed.
--   failed_spaces: the tokens of the spaces that failed.
--   runs_new: runs stored for the first time.
--   runs_updated: runs whose stored version changed.
--   runs_rejected: run items set aside in unpod.runs_rejected.
--   requests: API requests made.
--   retries: API requests retried.
--   duration_seconds: how long the load took, in seconds.


with

loads as (
    select * from analytics.stg_load_history
),

final as (
    select * from loads
)

select * from final
