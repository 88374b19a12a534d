-- One row per collection_ref (NULL is its own group) with a run that some load saw open.
-- Queue time apart from run time: how long a collection's runs wait (pending or scheduled) before they move on, and
-- how long they run, as medians bracketed by what the loads saw (the true median lies within each pair: the median
-- of the lower bounds is a lower bound of the true median, and so for the upper ones). A run counts in a phase once
-- it has left it (a load saw it in a later status); the runs still in it are counted apart. Runs that started and
-- finished between two loads were never seen open and are not here: their whole duration is in run_durations.
-- columns:
--   collection_ref: the collection; NULL groups the runs that came without one.
--   queued_runs: runs seen pending or scheduled that a later load saw in another status (they left the queue).
--   p50_queued_min_seconds: median of those runs' least time queued (min_seconds of time_in_status, summed).
--   p50_queued_max_seconds: median of their most time queued (max_seconds, summed).
--   running_runs: runs seen running or in_progress that a later load saw in another status (mostly terminal).
--   p50_running_min_seconds: median of those runs' least time running.
--   p50_running_max_seconds: median of their most time running.
--   queued_now_runs: runs pending or scheduled now.
--   running_now_runs: runs running or in_progress now.
--   held_now_runs: runs on hold now.
--   max_queued_now_seconds: the longest a run still queued has been seen queued (its min_seconds).

with

spells as (
    select * from analytics.int_status_spells
),

-- Each run's time in each phase, and whether it is in that phase now.
run_phases as (
    select
        spells.run_id,
        min(spells.collection_ref) as collection_ref,
        spells.phase,
        bool_or(spells.left_by is null) as is_current,
        sum(spells.min_seconds) as min_seconds,
        sum(spells.max_seconds) as max_seconds
    from spells
    group by spells.run_id, spells.phase
),

aggregated as (
    select
        run_phases.collection_ref,
        count(*) filter (where run_phases.phase = 'queued' and not run_phases.is_current) as queued_runs,
        percentile_cont(0.5) within group (order by run_phases.min_seconds)
            filter (where run_phases.phase = 'queued' and not run_phases.is_current) as p50_queued_min_seconds,
        percentile_cont(0.5) within group (order by run_phases.max_seconds)
            filter (where run_phases.phase = 'queued' and not run_phases.is_current) as p50_queued_max_seconds,
        count(*) filter (where run_phases.phase = 'running' and not run_phases.is_current) as running_runs,
        percentile_cont(0.5) within group (order by run_phases.min_seconds)
            filter (where run_phases.phase = 'running' and not run_phases.is_current) as p50_running_min_seconds,
        percentile_cont(0.5) within group (order by run_phases.max_seconds)
            filter (where run_phases.phase = 'running' and not run_phases.is_current) as p50_running_max_seconds,
        count(*) filter (where run_phases.phase = 'queued' and run_phases.is_current) as queued_now_runs,
        count(*) filter (where run_phases.phase = 'running' and run_phases.is_current) as running_now_runs,
        count(*) filter (where run_phases.phase = 'held' and run_phases.is_current) as held_now_runs,
        max(run_phases.min_seconds) filter (where run_phases.phase = 'queued' and run_phases.is_current)
            as max_queued_now_seconds
    from run_phases
    group by run_phases.collection_ref
),

final as (
    select * from aggregated
)

select * from final
