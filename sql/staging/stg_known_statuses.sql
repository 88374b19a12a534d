-- One row per run status the API is known to send: the one place in SQL that says which statuses end a run, and
-- what each open one says a run is doing.
-- int_runs joins this to say whether a run is terminal or failed (every mart and check reads that there), and the
-- status history's models to say it of each version; a status not listed here, or none, is open.
-- pipelines/unpod_runs/statuses.py holds the same lists for Python, and a test keeps them equal.
-- columns:
--   status: the status as the API sends it.
--   is_terminal: the run has ended (completed, failed or partially_completed); it does not change again.
--   is_failed: the run failed (partially_completed is terminal, not failed).
--   phase: what an open status says the run is doing: queued (pending, scheduled), running (running, in_progress) or held (hold); NULL for a terminal status. An open status not listed here is in phase other.

with

statuses as (
    select *
    from (
        values
            ('pending', false, false, 'queued'),
            ('scheduled', false, false, 'queued'),
            ('in_progress', false, false, 'running'),
            ('hold', false, false, 'held'),
            ('running', false, false, 'running'),
            ('completed', true, false, null),
            ('failed', true, true, null),
            ('partially_completed', true, false, null)
    ) as known (status, is_terminal, is_failed, phase)
),

final as (
    select
        cast(status as varchar) as status,
        cast(is_terminal as boolean) as is_terminal,
        cast(is_failed as boolean) as is_failed,
        cast(phase as varchar) as phase
    from statuses
)

select * from final
