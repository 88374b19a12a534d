-- Each run_id is stored once: a second copy would count the run twice in every mart.
-- severity: error
select
    runs.run_id,
    count(*) as copies,
    list(distinct runs.status) as statuses
from unpod.runs as runs
where runs.run_id is not null
group by runs.run_id
having count(*) > 1
