-- One row per run status the API is known to send: the one place in SQL that says which statuses end a run.
-- int_runs joins this to say whether a run is terminal or failed (every mart and check reads that there), and the
-- status history's models to say it of each version; a status not listed here, or none, is open.
-- pipelines/unpod_runs/statuses.py holds the same lists for Python, and a test keeps them equal.
-- columns:
--   status: the status as the API sends it.
--   is_terminal: the run has ended (completed, failed or partially_completed); it does not change again.
--   is_failed: the run failed (partially_completed is terminal, not failed).

with

statuses as (
    select *
    from (
        values
            ('pending', false, false),
            ('scheduled', false, false),
            ('in_progress', false, false),
            ('hold', false, false),
            ('running', false, false),
            ('completed', true, false),
            ('failed', true, true),
            ('partially_completed', true, false)
    ) as known (status, is_terminal, is_failed)
),

final as (
    select
        cast(status as varchar) as status,
        cast(is_terminal as boolean) as is_terminal,
        cast(is_failed as boolean) as is_failed
    from statuses
)

select * from final
