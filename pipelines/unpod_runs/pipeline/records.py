"""Turn one page of the API's run items into rows: an Arrow table of good runs, and the rejects.

A bad item never spoils its page: it is set aside with the reason and the raw JSON, and the good items
of the same page load. Timestamps are normalised to UTC here, because the API sends them without a zone.

Pages are converted column by column with Arrow (a few microseconds a run); only the items that need it
(odd types, timestamps in another format than the API's own) go through Python one by one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from unpod_runs.statuses import TERMINAL_STATUSES

API_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"

TIMESTAMP = pa.timestamp("us", tz="UTC")
RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        ("space_token", pa.string()),
        ("collection_ref", pa.string()),
        ("run_mode", pa.string()),
        ("status", pa.string()),
        ("batch_count", pa.int64()),
        ("created", TIMESTAMP),
        ("modified", TIMESTAMP),
        ("space_id", pa.string()),
        ("user", pa.string()),
        ("thread_id", pa.string()),
        ("deleted_at", TIMESTAMP),
    ]
)
TEXT_FIELDS = ("collection_ref", "run_mode", "status", "space_id", "user", "thread_id")
# The first array settles pyarrow's check for pandas, here at import and not in a worker thread: pandas imported
# lazily there while dlt's extract thread checks sys.modules["pandas"] fails that check on a half-initialised module.
TERMINAL_VALUES = pa.array(sorted(TERMINAL_STATUSES))


@dataclass
class ParsedPage:
    """The good runs of a page (``positions``: where each stood in the page) and the rejected items."""

    table: pa.Table | None
    positions: pa.Array
    rejected: list[dict]


class _SlowPath(Exception):
    """An item whose types Arrow will not take as they are: convert the page item by item."""


def parse_timestamp(value: Any) -> datetime | None:
    """Parse the API's ``YYYY-MM-DDTHH:MM:SS`` (UTC, no zone) and the documented variants (``Z``, offsets, fractions)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp string: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a timestamp ({exc})") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def open_mask(table: pa.Table) -> pa.ChunkedArray:
    """True for the runs that can still change: every status but the terminal ones, unknown and missing too."""
    return pc.invert(pc.fill_null(pc.is_in(table["status"], value_set=TERMINAL_VALUES), False))


def parse_page(space_token: str, page: int, items: list[Any], seen_at: datetime) -> ParsedPage:
    """Split a page's items into good runs (one Arrow table) and rejected items (rows)."""
    try:
        return _parse_columns(space_token, page, items, seen_at)
    except _SlowPath:
        return _parse_items(space_token, page, items, seen_at)


def _parse_columns(space_token: str, page: int, items: list[Any], seen_at: datetime) -> ParsedPage:
    if any(type(item) is not dict for item in items):
        raise _SlowPath()
    try:
        columns = {name: pa.array([item.get(name) for item in items], pa.string()) for name in ("run_id", *TEXT_FIELDS)}
        batch_count = pa.array([item.get("batch_count") for item in items], pa.int64())
        raw_created = pa.array([item.get("created") for item in items], pa.string())
        raw_modified = pa.array([item.get("modified") for item in items], pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise _SlowPath() from None
    reasons: dict[int, str] = {}
    run_id = columns["run_id"]
    missing_id = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(run_id)), 0), True)
    for position in pc.indices_nonzero(missing_id).to_pylist():
        value = items[position].get("run_id")
        reasons[position] = "no run_id" if value is None else f"run_id {value!r} is not a non-empty string"
    created = _timestamps(raw_created, items, "created", reasons)
    modified = _timestamps(raw_modified, items, "modified", reasons)
    table = pa.Table.from_arrays(
        [
            run_id,
            pa.array([space_token] * len(items), pa.string()),
            columns["collection_ref"],
            columns["run_mode"],
            columns["status"],
            batch_count,
            created,
            modified,
            columns["space_id"],
            columns["user"],
            columns["thread_id"],
            pa.nulls(len(items), TIMESTAMP),
        ],
        schema=RUNS_SCHEMA,
    )
    positions = pa.array(range(len(items)), pa.int64())
    if reasons:
        keep = pa.array([position not in reasons for position in range(len(items))])
        table, positions = table.filter(keep), positions.filter(keep)
    rejected = [_rejected_row(space_token, page, position, items[position], reason, seen_at)
                for position, reason in sorted(reasons.items())]
    return ParsedPage(table if table.num_rows else None, positions, rejected)


def _timestamps(raw: pa.Array, items: list[dict], name: str, reasons: dict[int, str]) -> pa.Array:
    """Parse the API's own format in bulk; anything else (``Z``, offsets, fractions, garbage) one by one."""
    try:
        # Arrow's cast is strict (no Feb 30, no trailing zone) and accepts only what fromisoformat accepts too.
        return raw.cast(pa.timestamp("s")).cast(TIMESTAMP)
    except pa.ArrowInvalid:
        pass
    naive = pc.strptime(raw, format=API_TIMESTAMP_FORMAT, unit="s", error_is_null=True)
    # strptime rolls impossible dates over (Feb 30 -> Mar 2): only a value that formats back to itself is taken.
    exact = pc.fill_null(pc.equal(pc.strftime(naive, format=API_TIMESTAMP_FORMAT), raw), False)
    parsed = pc.if_else(exact, naive, pa.scalar(None, naive.type)).cast(TIMESTAMP)
    odd = pc.and_(pc.is_valid(raw), pc.invert(exact)).to_numpy(zero_copy_only=False).nonzero()[0]
    if not len(odd):
        return parsed
    values = parsed.to_pylist()
    for position in odd.tolist():
        value = items[position].get(name)
        try:
            values[position] = parse_timestamp(value)
        except ValueError:
            reasons.setdefault(position, f"{name} {value!r} does not parse")
    return pa.array(values, TIMESTAMP)


def _parse_items(space_token: str, page: int, items: list[Any], seen_at: datetime) -> ParsedPage:
    """The careful path, item by item, for pages holding non-objects or values of unexpected types."""
    rows: list[dict] = []
    positions: list[int] = []
    rejected: list[dict] = []
    for position, item in enumerate(items):
        try:
            row = _parse_item(space_token, item)
        except ValueError as exc:
            rejected.append(_rejected_row(space_token, page, position, item, str(exc), seen_at))
            continue
        rows.append(row)
        positions.append(position)
    table = pa.Table.from_pylist(rows, schema=RUNS_SCHEMA) if rows else None
    return ParsedPage(table, pa.array(positions, pa.int64()), rejected)


def _parse_item(space_token: str, item: Any) -> dict:
    if not isinstance(item, dict):
        raise ValueError(f"item is a JSON {type(item).__name__}, not an object")
    run_id = item.get("run_id")
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError("no run_id" if run_id is None else f"run_id {run_id!r} is not a non-empty string")
    row: dict[str, Any] = {"run_id": run_id, "space_token": space_token, "deleted_at": None}
    for name in ("created", "modified"):
        try:
            row[name] = parse_timestamp(item.get(name))
        except ValueError:
            raise ValueError(f"{name} {item.get(name)!r} does not parse") from None
    for name in TEXT_FIELDS:
        row[name] = _text(item.get(name))
    row["batch_count"] = _integer(item.get("batch_count"))
    return row


def _rejected_row(space_token: str, page: int, position: int, item: Any, reason: str, seen_at: datetime) -> dict:
    raw_item = orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()
    return {
        # The same bad item read again on a later night is one row, last seen then, not a new one.
        "item_key": hashlib.sha256(f"{space_token}\n{raw_item}".encode()).hexdigest()[:32],
        "space_token": space_token,
        "page": page,
        "position": position,
        "reason": reason,
        "raw_item": raw_item,
        "seen_at": seen_at,
    }


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None
