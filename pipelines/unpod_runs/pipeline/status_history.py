"""Rows of ``unpod.run_status_history``: one per version (status, ``modified``) of a run that a load saw, with when
it was first and last seen in the API's clock (the ``Date`` of the response that held it).

A night writes only the versions it read: the rows that went on to ``unpod.runs`` (new versions, first and last seen
now) and the open runs it found unchanged (their version's ``last_seen_at`` moves; ``first_seen_at`` comes from the
cursor). A full pass reads versions already known, so it keeps their ``first_seen_at`` from the stored table.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from unpod_runs.pipeline.records import TIMESTAMP

HISTORY_TABLE = "run_status_history"
HISTORY_SCHEMA = pa.schema(
    [pa.field("history_key", pa.string(), nullable=False), ("run_id", pa.string()), ("space_token", pa.string()),
     ("status", pa.string()), ("modified", TIMESTAMP), ("first_seen_at", TIMESTAMP), ("last_seen_at", TIMESTAMP)]
)
HISTORY_COLUMNS = {
    "history_key": {"data_type": "text", "nullable": False},
    "run_id": {"data_type": "text"},
    "space_token": {"data_type": "text"},
    "status": {"data_type": "text"},
    "modified": {"data_type": "timestamp"},
    # A version read twice in one load (offset paging repeats runs) keeps its earliest sighting.
    "first_seen_at": {"data_type": "timestamp", "dedup_sort": "asc"},
    "last_seen_at": {"data_type": "timestamp"},
}


def version_keys(run_id: pa.Array, status: pa.Array, modified: pa.Array) -> pa.Array:
    """The primary key of each version: a hash of its run, status and ``modified`` (a missing value is empty)."""
    parts = [pc.fill_null(run_id, ""), pc.fill_null(status, ""),
             pc.fill_null(pc.cast(pc.cast(modified, pa.int64()), pa.string()), "")]
    joined = pc.binary_join_element_wise(*parts, "\x1f").to_pylist()
    return pa.array([hashlib.md5(key.encode()).hexdigest() for key in joined], pa.string())


def seen_versions(runs: pa.Table, seen_at: pa.Array) -> pa.Table:
    """History rows for versions read in one batch: first and last seen at their response's Date."""
    return pa.table({
        "history_key": version_keys(runs["run_id"], runs["status"], runs["modified"]),
        "run_id": runs["run_id"],
        "space_token": runs["space_token"],
        "status": runs["status"],
        "modified": runs["modified"],
        "first_seen_at": seen_at,
        "last_seen_at": seen_at,
    }, schema=HISTORY_SCHEMA)


def seen_again(space_token: str, runs: pa.Table) -> pa.Table:
    """History rows for open runs found unchanged (``first_seen_at`` and ``last_seen_at`` given)."""
    return pa.table({
        "history_key": version_keys(runs["run_id"], runs["status"], runs["modified"]),
        "run_id": runs["run_id"],
        "space_token": pa.array([space_token] * runs.num_rows, pa.string()),
        "status": runs["status"],
        "modified": runs["modified"],
        "first_seen_at": runs["first_seen_at"],
        "last_seen_at": runs["last_seen_at"],
    }, schema=HISTORY_SCHEMA)


def keep_first_seen(table: pa.Table, keys: pa.Array, stored: dict[str, object]) -> pa.Table:
    """``table`` with its ``first_seen_at`` set back to the stored one where a version (``keys``) was seen before."""
    if not stored or not table.num_rows:
        return table
    earlier = pa.array([stored.get(key) for key in keys.to_pylist()], TIMESTAMP)
    column = table.schema.get_field_index("first_seen_at")
    current = table["first_seen_at"]
    first_seen = pc.if_else(pc.fill_null(pc.less(earlier, current), False), earlier, current)
    return table.set_column(column, "first_seen_at", first_seen)
