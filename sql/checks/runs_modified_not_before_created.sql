-- A listed run is never modified before it was created: otherwise its duration would be negative.
-- severity: error
select
    runs.run_id,
    runs.space_token,
    runs.status,
    runs.created,
    runs.modified
from checked_runs as runs
where runs.deleted_at is null and runs.modified < runs.created
