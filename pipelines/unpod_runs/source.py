"""The dlt source ``unpod``: spaces, their runs, and the run items that could not be loaded.

One hidden resource, ``space_pages``, reads the spaces concurrently (each with its own cursor, see
``incremental.py``) and yields every page as it arrives; transformers route what a page holds to
``runs``, ``runs_rejected``, ``spaces``, ``run_cursor`` and ``run_status_history`` (see ``status_history.py``). A space's cursor is written to the source state only when the
whole space was read, so a failed space does not advance, and dlt commits the state with the load.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
import pyarrow as pa
import pyarrow.compute as pc
import pandas  # noqa: F401  imported before the worker threads: pyarrow would import it lazily from one of them
# while dlt's extract thread checks sys.modules["pandas"], and a half-initialised module fails that check.

from .client import AuthError, ConfigError, UnpodClient, UnpodError
from .config import DEFAULT_REQUEST_COST_RUNS
from .incremental import (
    OPEN_RUNS_SCHEMA,
    PageBatch,
    SpaceCursor,
    SpaceReader,
    SpaceResult,
    cursor_rows,
    empty_open_runs,
    open_runs_from_state,
)
from .progress import Progress
from .rejections import Rejections
from .status_history import HISTORY_COLUMNS, HISTORY_TABLE, keep_first_seen, seen_again, seen_versions, version_keys

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
MERGE = {"disposition": "merge", "strategy": "delete-insert"}
RUN_COLUMNS = {
    "run_id": {"data_type": "text", "nullable": False},
    "space_token": {"data_type": "text"},
    "collection_ref": {"data_type": "text"},
    "run_mode": {"data_type": "text"},
    "status": {"data_type": "text"},
    "batch_count": {"data_type": "bigint"},
    "created": {"data_type": "timestamp"},
    "modified": {"data_type": "timestamp", "dedup_sort": "desc"},
    "space_id": {"data_type": "text"},
    "user": {"data_type": "text"},
    "thread_id": {"data_type": "text"},
    "deleted_at": {"data_type": "timestamp"},
}
REJECTED_COLUMNS = {
    "item_key": {"data_type": "text", "nullable": False},
    "space_token": {"data_type": "text"},
    "page": {"data_type": "bigint"},
    "position": {"data_type": "bigint"},
    "reason": {"data_type": "text"},
    "raw_item": {"data_type": "text"},
    "seen_at": {"data_type": "timestamp", "dedup_sort": "desc"},
}

CURSOR_COLUMNS = {
    "run_id": {"data_type": "text", "nullable": False},
    "space_token": {"data_type": "text"},
    "rank": {"data_type": "bigint"},
    "status": {"data_type": "text"},
    "modified": {"data_type": "timestamp"},
    "slack": {"data_type": "bigint"},
    "first_seen_at": {"data_type": "timestamp"},
    "closed": {"data_type": "bool", "hard_delete": True},
}
CURSOR_TABLE = "run_cursor"

SPACE_COLUMNS = {
    name: {"data_type": "text"}
    for name in ("token", "name", "slug", "description", "logo", "privacy_type", "space_type", "content_type",
                 "organization__name", "organization__domain_handle")
}


@dataclass(frozen=True)
class SpaceTarget:
    """A space to load: its token, and its fields when the spaces list already gave them."""

    token: str
    details: dict | None = None


@dataclass(frozen=True)
class SpaceDetails:
    token: str
    fields: dict


@dataclass(frozen=True)
class VersionsSeen:
    """Rows of ``unpod.run_status_history``."""

    table: pa.Table


@dataclass
class ExtractReport:
    """What happened to each space during extraction, for the summary, exit code and load history."""

    results: dict[str, SpaceResult] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    rejections: Rejections = field(default_factory=Rejections)

    @property
    def rejected(self) -> int:
        return sum(result.rejected for result in self.results.values())


@dataclass
class Chunk:
    """Many pages at once: dlt spends milliseconds per item on hints, so items should be large."""

    runs: list[pa.Table] = field(default_factory=list)
    cursor: list[pa.Table] = field(default_factory=list)
    history: list[pa.Table] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    spaces: list[dict] = field(default_factory=list)
    rows: int = 0


def _chunks(items: Iterator[PageBatch | SpaceDetails | VersionsSeen | pa.Table],
            max_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    chunk = Chunk()
    for item in items:
        if isinstance(item, SpaceDetails):
            chunk.spaces.append({**item.fields, "token": item.token})
        elif isinstance(item, VersionsSeen):
            chunk.history.append(item.table)
            chunk.rows += item.table.num_rows
        elif isinstance(item, pa.Table):
            chunk.cursor.append(item)
            chunk.rows += item.num_rows
        else:
            if item.parsed.table is not None:
                chunk.runs.append(item.parsed.table)
                chunk.rows += item.parsed.table.num_rows
            chunk.rejected.extend(item.parsed.rejected)
        if chunk.rows >= max_rows:
            yield chunk
            chunk = Chunk()
    if chunk.runs or chunk.cursor or chunk.history or chunk.rejected or chunk.spaces:
        yield chunk


class _Cancelled(Exception):
    """Raised in a worker when the extraction as a whole has stopped."""


@dlt.source(name="unpod", max_table_nesting=1)
def unpod(
    client: Any,
    spaces: Any,
    page_size: int = 1000,
    workers: int = 4,
    full_scan: bool = False,
    report: Any = None,
    request_cost: int = DEFAULT_REQUEST_COST_RUNS,
) -> Any:
    """Unpod runs of the given spaces. ``client`` is an ``UnpodClient``; ``spaces`` a list of ``SpaceTarget``."""
    report = report if report is not None else ExtractReport()

    @dlt.resource(selected=False)
    def space_pages() -> Iterator[Chunk]:
        yield from _chunks(_read_spaces(client, list(spaces), page_size, workers, full_scan, report, request_cost))

    @dlt.transformer(data_from=space_pages, name="runs", primary_key="run_id", write_disposition=MERGE, columns=RUN_COLUMNS)
    def runs(chunk: Chunk) -> Iterator[Any]:
        if chunk.runs:
            yield pa.concat_tables(chunk.runs)

    @dlt.transformer(
        data_from=space_pages, name="runs_rejected", primary_key="item_key", write_disposition=MERGE,
        columns=REJECTED_COLUMNS,
    )
    def runs_rejected(chunk: Chunk) -> Iterator[Any]:
        if chunk.rejected:
            yield chunk.rejected

    @dlt.transformer(data_from=space_pages, name="spaces", primary_key="token", write_disposition=MERGE, columns=SPACE_COLUMNS)
    def spaces_table(chunk: Chunk) -> Iterator[Any]:
        if chunk.spaces:
            yield chunk.spaces

    @dlt.transformer(
        data_from=space_pages, name=CURSOR_TABLE, primary_key="run_id", write_disposition=MERGE, columns=CURSOR_COLUMNS,
    )
    def run_cursor(chunk: Chunk) -> Iterator[Any]:
        """Every open run with its rank: the incremental cursor's bulk, changed rows only (closed ones deleted)."""
        if chunk.cursor:
            yield pa.concat_tables(chunk.cursor)

    @dlt.transformer(
        data_from=space_pages, name=HISTORY_TABLE, primary_key="history_key", write_disposition=MERGE,
        columns=HISTORY_COLUMNS,
    )
    def run_status_history(chunk: Chunk) -> Iterator[Any]:
        """One row per version of a run, with when it was first and last seen (the API's Date)."""
        if chunk.history:
            yield pa.concat_tables(chunk.history)

    return space_pages, runs, runs_rejected, spaces_table, run_cursor, run_status_history


def _read_spaces(
    client: UnpodClient,
    targets: list[SpaceTarget],
    page_size: int,
    workers: int,
    full_scan: bool,
    report: ExtractReport,
    request_cost: int,
) -> Iterator[PageBatch | SpaceDetails | VersionsSeen | pa.Table]:
    """Read spaces on a bounded pool of threads, yielding their pages in the extract thread."""
    state = dlt.current.source_state().setdefault("spaces", {})
    cursors = {target.token: SpaceCursor.from_state(state.get(target.token)) for target in targets}
    stored_open = _stored_open_runs() if not full_scan and any(cursors.values()) else {}
    # A cursor of the first format holds its open runs in the state: read them there, and write them all to the table.
    migrated = {target.token: open_runs_from_state(state.get(target.token)) for target in targets}
    full_passes = [target.token for target in targets if full_scan or cursors[target.token] is None]
    # A full pass reads versions seen before: they keep the moment they were first seen.
    stored_first_seen = _stored_first_seen(full_passes) if full_passes else {}
    previous_open = {
        token: legacy if legacy is not None else stored_open.get(token, empty_open_runs())
        for token, legacy in migrated.items()
    }
    messages: queue.Queue = queue.Queue(maxsize=max(4, workers * 2))
    cancelled = threading.Event()

    def put(message: tuple) -> None:
        while True:
            if cancelled.is_set():
                raise _Cancelled()
            try:
                messages.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    def work(target: SpaceTarget) -> None:
        cursor = None if full_scan else cursors[target.token]
        try:
            if target.details is not None:
                put(("details", SpaceDetails(target.token, target.details)))
            elif cursor is None:
                put(("details", SpaceDetails(target.token, _space_fields(client, target.token))))
            reader = SpaceReader(
                client, target.token, cursors[target.token], previous_open[target.token], page_size,
                full_scan or cursor is None, emit=lambda batch: put(("page", batch)), now=_utcnow,
                request_cost=request_cost,
            )
            put(("done", reader.read()))
        except _Cancelled:
            return
        except (AuthError, ConfigError) as exc:  # the token or the URL is wrong: no space can load
            put(("auth", exc))
        except UnpodError as exc:
            put(("failed", (target.token, str(exc))))
        except Exception as exc:  # a bug or an unforeseen answer must fail this space, not the others
            log.exception("event=space_error space=%s", target.token)
            put(("failed", (target.token, f"space {target.token}: unexpected {type(exc).__name__}: {exc}")))

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="unpod-space")
    progress = Progress({token: cursor.count if cursor else None for token, cursor in cursors.items()})
    try:
        # Biggest spaces first (as far as the last load knew them): the longest read sets the night's length.
        for target in sorted(targets, key=lambda target: -(cursors[target.token].count if cursors[target.token] else 0)):
            pool.submit(work, target)
        remaining = len(targets)
        while remaining:
            kind, payload = messages.get()
            if kind == "page":
                progress.page(payload.space_token, payload.served, payload.count)
                report.rejections.add(payload.parsed.rejected)
            elif kind in ("done", "failed"):
                progress.space_done(payload.space_token if kind == "done" else payload[0])
            if kind in ("page", "details"):
                yield payload
                if kind == "page" and payload.parsed.table is not None:
                    versions = seen_versions(payload.parsed.table, payload.seen_at)
                    yield VersionsSeen(keep_first_seen(versions, versions["history_key"], stored_first_seen))
            elif kind == "done":
                remaining -= 1
                changes = payload.cursor_changes
                if migrated[payload.space_token] is not None and not payload.full_pass:
                    changes = cursor_rows(payload.open_runs, payload.space_token, closed=False)
                if changes.num_rows:
                    keys = version_keys(changes["run_id"], changes["status"], changes["modified"])
                    yield keep_first_seen(changes, keys, stored_first_seen)
                if payload.seen_unchanged.num_rows:
                    yield VersionsSeen(seen_again(payload.space_token, payload.seen_unchanged))
                state[payload.space_token] = payload.cursor.to_state()
                report.results[payload.space_token] = payload
                log.info(
                    "event=space_loaded space=%s mode=%s requests=%d runs_seen=%d open_runs=%d rejected=%d",
                    payload.space_token, "full" if payload.full_pass else "incremental", payload.pages_read,
                    payload.runs_seen, payload.cursor.open_runs, payload.rejected,
                )
            elif kind == "failed":
                remaining -= 1
                token, message = payload
                report.failures[token] = message
                log.error("event=space_failed space=%s error=%r", token, message)
            elif kind == "auth":
                raise payload
    finally:
        progress.close()
        cancelled.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _stored_open_runs() -> dict[str, pa.Table]:
    """The open runs each space had at the last load, from the destination's ``run_cursor`` table."""
    try:
        with dlt.current.pipeline().sql_client() as client:
            table_name = client.make_qualified_table_name(CURSOR_TABLE)
            # Every column, whichever this table has: one kept before the history has no first_seen_at yet.
            with client.execute_query(f"select * from {table_name} order by space_token, rank") as rows:
                table = rows.arrow()  # in bulk: 250,000 rows as Python tuples took seconds
    except DestinationUndefinedEntity:  # no table yet: the first load since the cursor was kept there
        return {}
    return split_by_space(table)


def split_by_space(table: pa.Table | None) -> dict[str, pa.Table]:
    """Rows of ``unpod.run_cursor``, ordered by space and rank, as each space's open runs: sliced, not filtered
    space by space (50 passes over 250,000 rows)."""
    schema = pa.schema([("space_token", pa.string()), *OPEN_RUNS_SCHEMA])
    if table is None:
        table = schema.empty_table()
    table = pa.table([table[field.name].cast(field.type) if field.name in table.column_names
                      else pa.nulls(table.num_rows, field.type) for field in schema], schema=schema)
    tokens = table["space_token"].combine_chunks()
    runs = table.select(OPEN_RUNS_SCHEMA.names)
    spaces: dict[str, pa.Table] = {}
    start = 0
    for entry in pc.value_counts(tokens).to_pylist() if len(tokens) else []:
        # value_counts lists the values in order of first appearance, so in the order of the rows
        spaces[entry["values"]] = runs.slice(start, entry["counts"])
        start += entry["counts"]
    return spaces


def _stored_first_seen(space_tokens: list[str]) -> dict[str, Any]:
    """history_key -> first_seen_at of the stored versions of these spaces (none before the first load)."""
    tokens = ", ".join("'" + token.replace("'", "''") + "'" for token in space_tokens)
    try:
        with dlt.current.pipeline().sql_client() as client:
            table_name = client.make_qualified_table_name(HISTORY_TABLE)
            query = f"select history_key, first_seen_at from {table_name} where space_token in ({tokens})"
            with client.execute_query(query) as rows:
                return dict(rows.fetchall())
    except DestinationUndefinedEntity:
        return {}


def _space_fields(client: UnpodClient, token: str) -> dict:
    """Get Space by token where it answers; at least the token otherwise."""
    try:
        return client.get_space(token)
    except (AuthError, ConfigError):
        raise
    except UnpodError as exc:
        log.warning("event=space_details_unavailable space=%s reason=%r", token, str(exc))
        return {}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
