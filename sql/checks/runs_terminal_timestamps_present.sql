-- A terminal run has both created and modified: without them it has no duration and the percentiles leave it out.
-- severity: warn
select
    runs.run_id,
    runs.space_token,
    runs.status,
    runs.created,
    runs.modified
from analytics.int_runs as runs
where runs.is_terminal and (runs.created is null or runs.modified is null)
