-- One row per database: the API's clock at the latest load, the moment the recent-behaviour marts measure from.
-- The latest last_seen_at of the status history (the HTTP Date of the last response a load read); before there is
-- a history, the latest finished_at or created of the listed runs. Measured so, the figures do not move between
-- loads, nor with the reader's clock. A table: like every model, it shows the last build, not a load since.
-- materialized: table
-- columns:
--   as_of: the API's clock at the latest load.

with

finishes as (
    select * from analytics.int_run_finishes
),

runs as (
    select * from analytics.int_runs
),

final as (
    select coalesce(
        (select max(finishes.last_seen_at) from finishes),
        (select greatest(max(runs.finished_at), max(runs.created)) from runs)
    ) as as_of
)

select * from final
