-- Every listed run has a status the API is known to send; an unknown status (or none) counts as open, so look at it.
-- severity: warn
select
    runs.status,
    count(*) as runs,
    min(runs.run_id) as example_run_id
from analytics.int_runs as runs
where not runs.is_known_status
group by runs.status
order by runs desc
