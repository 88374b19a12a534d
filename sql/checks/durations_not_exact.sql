-- No terminal run finished without the API bumping its modified (finish_source = 'observed'): when some did, names the share of terminal runs whose duration is not exact (observed or unknown); use duration_min_seconds and duration_max_seconds for those.
-- severity: warn
-- Instant runs alone (unknown: modified = created, as the docs' examples show) do not warn: they are common and
-- their duration is most likely 0; the share counts them all the same.
select
    count(*) filter (where durations.finish_source <> 'modified') as not_exact_runs,
    count(*) as terminal_runs,
    round(count(*) filter (where durations.finish_source <> 'modified') / count(*)::double, 4) as share_not_exact,
    count(*) filter (where durations.finish_source = 'observed') as observed_runs,
    count(*) filter (where durations.finish_source = 'unknown') as unknown_runs
from analytics.run_durations as durations
where durations.is_terminal
having count(*) filter (where durations.finish_source = 'observed') > 0
