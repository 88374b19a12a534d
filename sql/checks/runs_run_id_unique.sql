-- Each run_id is stored once: a second copy would count the run twice in every mart.
-- severity: error
with

-- A second copy is written by a load, so the run_ids of the checked rows are the ones to count.
checked_ids as (
    select distinct checked_runs.run_id
    from checked_runs
    where checked_runs.run_id is not null
),

repeated as (
    select
        runs.run_id,
        count(*) as copies
    from unpod.runs as runs
    semi join checked_ids
        on runs.run_id = checked_ids.run_id
    group by runs.run_id
    having count(*) > 1
),

final as (
    select
        repeated.run_id,
        repeated.copies,
        list(distinct runs.status) as statuses
    from repeated
    inner join unpod.runs as runs
        on runs.run_id = repeated.run_id
    group by repeated.run_id, repeated.copies
)

select * from final
