-- One row per collection_ref (NULL is its own group) with a run created in the 14 days up to as_of.
-- Which collections got worse: failure rate and p95 duration of the runs created in the last 7 days against the 7
-- days before, with a regression flag. as_of is the API's clock at the latest load, so the windows do not move
-- between loads. A run counts in the window of its created; its rate and durations are those of the terminal runs.
-- The windows are 168 and 336 hours, not days: a day of interval arithmetic follows the reader's TimeZone.
-- The flag (is_regression) is raised when either holds, with both windows big enough to tell:
--   failure rate: at least 20 terminal runs in each window, the rate rose by at least 5 percentage points, and a
--   pooled two-proportion z-test gives z >= 1.96 (a rise that chance alone would give about one time in forty);
--   p95 duration: at least 50 exact durations (finish_source modified) in each window, and the p95 of the exact
--   durations rose by at least half and by at least 60 seconds. Exact durations only: a finish the API did not
--   bump reports 0 s or a heartbeat, which would hide a slowdown.
-- columns:
--   collection_ref: the collection; NULL groups the runs that came without one.
--   as_of: the API's clock at the latest load (the latest last_seen_at of the status history; before there is a history, the latest finished_at or created).
--   last_7d_runs: runs created in (as_of - 7 days, as_of], open ones too.
--   last_7d_terminal_runs: of those, terminal runs.
--   last_7d_failed_runs: of those, failed runs.
--   last_7d_failure_rate: last_7d_failed_runs / last_7d_terminal_runs; NULL without a terminal run.
--   last_7d_p95_duration_seconds: 95th percentile (continuous) of duration_seconds of those terminal runs.
--   last_7d_exact_duration_runs: of those, runs whose finish_source is modified.
--   last_7d_p95_exact_duration_seconds: 95th percentile of duration_seconds of those exact runs only.
--   prior_7d_runs: runs created in (as_of - 14 days, as_of - 7 days], open ones too.
--   prior_7d_terminal_runs: of those, terminal runs.
--   prior_7d_failed_runs: of those, failed runs.
--   prior_7d_failure_rate: prior_7d_failed_runs / prior_7d_terminal_runs; NULL without a terminal run.
--   prior_7d_p95_duration_seconds: 95th percentile of duration_seconds of those terminal runs.
--   prior_7d_exact_duration_runs: of those, runs whose finish_source is modified.
--   prior_7d_p95_exact_duration_seconds: 95th percentile of duration_seconds of those exact runs only.
--   failure_rate_change: last_7d_failure_rate - prior_7d_failure_rate (percentage points as a fraction).
--   failure_rate_z: the pooled two-proportion z statistic of that change; NULL when either window has no terminal run or the pooled rate is 0 or 1.
--   p95_exact_change_ratio: last_7d_p95_exact_duration_seconds / prior_7d_p95_exact_duration_seconds; NULL when the prior one is 0 or missing.
--   is_failure_regression: the failure-rate half of the rule holds.
--   is_duration_regression: the p95 half of the rule holds.
--   is_regression: is_failure_regression or is_duration_regression.

with

-- The run index, built first among the marts: a table, far cheaper to scan than the int_runs view. Read where it is
-- used (not materialized): a copy of every run would cost more than the scans.
runs as not materialized (
    select * from analytics.run_durations
),

clock as (
    select * from analytics.int_api_clock
),

windowed as (
    select
        runs.collection_ref,
        runs.is_terminal,
        runs.is_failed,
        runs.duration_seconds,
        runs.finish_source = 'modified' as is_exact,
        runs.created > clock.as_of - interval '168 hours' as is_last_7d
    from runs
    cross join clock
    where runs.created > clock.as_of - interval '336 hours' and runs.created <= clock.as_of
),

aggregated as (
    select
        windowed.collection_ref,
        count(*) filter (where windowed.is_last_7d) as last_7d_runs,
        count(*) filter (where windowed.is_last_7d and windowed.is_terminal) as last_7d_terminal_runs,
        count(*) filter (where windowed.is_last_7d and windowed.is_failed) as last_7d_failed_runs,
        percentile_cont(0.95) within group (order by windowed.duration_seconds)
            filter (where windowed.is_last_7d) as last_7d_p95_duration_seconds,
        count(*) filter (where windowed.is_last_7d and windowed.is_exact) as last_7d_exact_duration_runs,
        percentile_cont(0.95) within group (order by windowed.duration_seconds)
            filter (where windowed.is_last_7d and windowed.is_exact) as last_7d_p95_exact_duration_seconds,
        count(*) filter (where not windowed.is_last_7d) as prior_7d_runs,
        count(*) filter (where not windowed.is_last_7d and windowed.is_terminal) as prior_7d_terminal_runs,
        count(*) filter (where not windowed.is_last_7d and windowed.is_failed) as prior_7d_failed_runs,
        percentile_cont(0.95) within group (order by windowed.duration_seconds)
            filter (where not windowed.is_last_7d) as prior_7d_p95_duration_seconds,
        count(*) filter (where not windowed.is_last_7d and windowed.is_exact) as prior_7d_exact_duration_runs,
        percentile_cont(0.95) within group (order by windowed.duration_seconds)
            filter (where not windowed.is_last_7d and windowed.is_exact) as prior_7d_p95_exact_duration_seconds
    from windowed
    group by windowed.collection_ref
),

rated as (
    select
        aggregated.*,
        aggregated.last_7d_failed_runs / nullif(aggregated.last_7d_terminal_runs, 0)::double precision
            as last_7d_failure_rate,
        aggregated.prior_7d_failed_runs / nullif(aggregated.prior_7d_terminal_runs, 0)::double precision
            as prior_7d_failure_rate,
        (aggregated.last_7d_failed_runs + aggregated.prior_7d_failed_runs)
            / nullif(aggregated.last_7d_terminal_runs + aggregated.prior_7d_terminal_runs, 0)::double precision
            as pooled_failure_rate
    from aggregated
),

tested as (
    select
        rated.*,
        rated.last_7d_failure_rate - rated.prior_7d_failure_rate as failure_rate_change,
        (rated.last_7d_failure_rate - rated.prior_7d_failure_rate) / nullif(sqrt(
            rated.pooled_failure_rate * (1 - rated.pooled_failure_rate)
            * (1.0 / nullif(rated.last_7d_terminal_runs, 0) + 1.0 / nullif(rated.prior_7d_terminal_runs, 0))
        ), 0) as failure_rate_z,
        rated.last_7d_p95_exact_duration_seconds / nullif(rated.prior_7d_p95_exact_duration_seconds, 0)
            as p95_exact_change_ratio
    from rated
),

flagged as (
    select
        tested.*,
        coalesce(
            tested.last_7d_terminal_runs >= 20 and tested.prior_7d_terminal_runs >= 20
            and tested.failure_rate_change >= 0.05 and tested.failure_rate_z >= 1.96,
            false
        ) as is_failure_regression,
        coalesce(
            tested.last_7d_exact_duration_runs >= 50 and tested.prior_7d_exact_duration_runs >= 50
            and tested.last_7d_p95_exact_duration_seconds >= 1.5 * tested.prior_7d_p95_exact_duration_seconds
            and tested.last_7d_p95_exact_duration_seconds - tested.prior_7d_p95_exact_duration_seconds >= 60,
            false
        ) as is_duration_regression
    from tested
),

final as (
    select
        flagged.collection_ref,
        clock.as_of,
        flagged.last_7d_runs,
        flagged.last_7d_terminal_runs,
        flagged.last_7d_failed_runs,
        flagged.last_7d_failure_rate,
        flagged.last_7d_p95_duration_seconds,
        flagged.last_7d_exact_duration_runs,
        flagged.last_7d_p95_exact_duration_seconds,
        flagged.prior_7d_runs,
        flagged.prior_7d_terminal_runs,
        flagged.prior_7d_failed_runs,
        flagged.prior_7d_failure_rate,
        flagged.prior_7d_p95_duration_seconds,
        flagged.prior_7d_exact_duration_runs,
        flagged.prior_7d_p95_exact_duration_seconds,
        flagged.failure_rate_change,
        flagged.failure_rate_z,
        flagged.p95_exact_change_ratio,
        flagged.is_failure_regression,
        flagged.is_duration_regression,
        flagged.is_failure_regression or flagged.is_duration_regression as is_regression
    from flagged
    cross join clock
)

select * from final
