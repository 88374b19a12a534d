-- Every stored run has a run_id: a row without one cannot be merged, updated or traced back to the API.
-- severity: error
select
    runs.space_token,
    runs.collection_ref,
    runs.status,
    runs.created,
    runs.modified
from checked_runs as runs
where runs.run_id is null
