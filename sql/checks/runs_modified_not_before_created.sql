-- A listed run is never modified before it was created: otherwise its duration would be negative.
-- severity: error
select
    runs.run_id,
    runs.space_token,
    runs.status,
    runs.created,
    runs.modified
from analytics.stg_runs as runs
where runs.modified < runs.created
