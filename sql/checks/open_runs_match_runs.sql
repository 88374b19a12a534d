-- analytics.open_runs holds every open run of int_runs exactly once, and no terminal one.
-- severity: error
with

-- match_key: the run_id, or 'null' for a run without one (it must match too); PostgreSQL runs a full outer join
-- on equality only, not on "is not distinct from"
expected as (
    select runs.run_id, coalesce('id:' || runs.run_id, 'null') as match_key
    from analytics.int_runs as runs
    where not runs.is_terminal
),

listed as (
    select open_runs.run_id, coalesce('id:' || open_runs.run_id, 'null') as match_key, count(*) as copies
    from analytics.open_runs as open_runs
    group by open_runs.run_id
)

select coalesce(expected.run_id, listed.run_id) as run_id, coalesce(listed.copies, 0) as copies_in_open_runs,
    expected.run_id is not null as is_open
from expected
full outer join listed on listed.match_key = expected.match_key
where expected.match_key is null or listed.copies is distinct from 1
