-- One row per status (runs without a status form their own NULL group): a snapshot of where runs stand now.
-- Shows at a glance how many runs are still open and whether the API sent a status nobody knows yet.
-- columns:
--   status: the status as the API last showed it; NULL when the API omitted it.
--   is_terminal: completed, failed or partially_completed; any other status is open.
--   is_known_status: a status the API is known to send; false means a new value worth a look.
--   runs: runs currently in this status.
--   share_of_runs: runs / all runs the API still lists.
--   spaces: distinct spaces with a run in this status.
--   collections: distinct collection_ref values with a run in this status (NULL not counted).
--   first_created: the oldest created among these runs: for an open status, how long the oldest has waited.
--   last_created: the newest created among these runs.
--   last_modified: the latest modified among these runs.

with

runs as (
    select * from analytics.int_runs
),

aggregated as (
    select
        runs.status,
        bool_and(runs.is_terminal) as is_terminal,
        bool_and(runs.is_known_status) as is_known_status,
        count(*) as runs,
        count(distinct runs.space_token) as spaces,
        count(distinct runs.collection_ref) as collections,
        min(runs.created) as first_created,
        max(runs.created) as last_created,
        max(runs.modified) as last_modified
    from runs
    group by runs.status
),

final as (
    select
        status,
        is_terminal,
        is_known_status,
        runs,
        cast(runs as double) / sum(runs) over () as share_of_runs,
        spaces,
        collections,
        first_created,
        last_created,
        last_modified
    from aggregated
)

select * from final
