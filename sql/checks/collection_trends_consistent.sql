-- analytics.collection_trends has one row per collection; in each window failed <= terminal <= runs and the failure rate is failed / terminal; is_regression is the failure-rate or the p95 half of the rule.
-- severity: error
with

offending as (
    select collection_ref, 'more than one row' as problem
    from analytics.collection_trends
    group by collection_ref
    having count(*) > 1
    union all
    select collection_ref, 'counts or rates that do not add up'
    from analytics.collection_trends
    where last_7d_failed_runs > last_7d_terminal_runs or last_7d_terminal_runs > last_7d_runs
        or prior_7d_failed_runs > prior_7d_terminal_runs or prior_7d_terminal_runs > prior_7d_runs
        or last_7d_exact_duration_runs > last_7d_terminal_runs
        or prior_7d_exact_duration_runs > prior_7d_terminal_runs
        or last_7d_failure_rate < 0 or last_7d_failure_rate > 1
        or prior_7d_failure_rate < 0 or prior_7d_failure_rate > 1
        or (last_7d_terminal_runs = 0) <> (last_7d_failure_rate is null)
        or (prior_7d_terminal_runs = 0) <> (prior_7d_failure_rate is null)
    union all
    select collection_ref, 'is_regression is not the rule'
    from analytics.collection_trends
    where is_regression <> (is_failure_regression or is_duration_regression)
        or (is_failure_regression and not (last_7d_terminal_runs >= 20 and prior_7d_terminal_runs >= 20))
        or (is_duration_regression and not (last_7d_exact_duration_runs >= 50 and prior_7d_exact_duration_runs >= 50))
)

select * from offending
