-- analytics.open_runs holds every open run of stg_runs exactly once, and no terminal one.
-- severity: error
with

expected as (
    select runs.run_id
    from analytics.stg_runs as runs
    where not runs.is_terminal
),

listed as (
    select open_runs.run_id, count(*) as copies
    from analytics.open_runs as open_runs
    group by open_runs.run_id
)

select coalesce(expected.run_id, listed.run_id) as run_id, coalesce(listed.copies, 0) as copies_in_open_runs,
    expected.run_id is not null as is_open
from expected
full outer join listed on listed.run_id is not distinct from expected.run_id
where expected.run_id is null or listed.copies is distinct from 1
