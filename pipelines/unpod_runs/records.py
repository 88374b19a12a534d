"""Turn one page of the API's run items into rows: an Arrow table of good runs, and the rejects.

A bad item never spoils its page: it is set aside with the reason and the raw JSON, and the good items
of the same page load. Timestamps are normalised to UTC here, because the API sends them without a zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
import pyarrow as pa

TERMINAL_STATUSES = frozenset({"completed", "failed", "partially_completed"})

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


@dataclass(frozen=True)
class RunEntry:
    """What the incremental rule needs to know of a listed run: where it was and whether it can still change."""

    run_id: str
    position: int
    created: datetime | None
    status: str | None
    modified: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES


@dataclass
class ParsedPage:
    table: pa.Table | None
    entries: list[RunEntry]
    rejected: list[dict]


def parse_timestamp(value: Any) -> datetime | None:
    """Parse the API's ``YYYY-MM-DDTHH:MM:SS`` (UTC, no zone) and the documented variants (``Z``, offsets, fractions)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp string: {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_page(space_token: str, page: int, items: list[Any], seen_at: datetime) -> ParsedPage:
    """Split a page's items into good runs (as one Arrow table) and rejected items (as rows)."""
    columns: dict[str, list] = {name: [] for name in RUNS_SCHEMA.names}
    entries: list[RunEntry] = []
    rejected: list[dict] = []
    for position, item in enumerate(items):
        reason = _rejection_reason(item)
        if reason is None:
            try:
                created = parse_timestamp(item.get("created"))
            except ValueError:
                reason = f"created {item.get('created')!r} does not parse"
            else:
                try:
                    modified = parse_timestamp(item.get("modified"))
                except ValueError:
                    reason = f"modified {item.get('modified')!r} does not parse"
        if reason is not None:
            rejected.append(_rejected_row(space_token, page, position, item, reason, seen_at))
            continue
        run_id = item["run_id"]
        status = _text(item.get("status"))
        columns["run_id"].append(run_id)
        columns["space_token"].append(space_token)
        for name in TEXT_FIELDS:
            columns[name].append(_text(item.get(name)))
        columns["batch_count"].append(_integer(item.get("batch_count")))
        columns["created"].append(created)
        columns["modified"].append(modified)
        columns["deleted_at"].append(None)
        entries.append(RunEntry(run_id, position, created, status, modified))
    table = pa.Table.from_pydict(columns, schema=RUNS_SCHEMA) if entries else None
    return ParsedPage(table, entries, rejected)


def _rejection_reason(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"item is a JSON {type(item).__name__}, not an object"
    run_id = item.get("run_id")
    if not isinstance(run_id, str) or not run_id.strip():
        return "no run_id" if run_id is None else f"run_id {run_id!r} is not a non-empty string"
    return None


def _rejected_row(space_token: str, page: int, position: int, item: Any, reason: str, seen_at: datetime) -> dict:
    return {
        "space_token": space_token,
        "page": page,
        "position": position,
        "reason": reason,
        "raw_item": orjson.dumps(item).decode(),
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
