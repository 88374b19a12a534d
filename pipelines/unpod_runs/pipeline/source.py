"""The dlt source ``unpod``: the spaces of an organization, their runs, and how each space's read went.

Use it like any verified source, in a pipeline and destination of your own::

    pipeline = dlt.pipeline("unpod_runs", destination="duckdb", dataset_name="unpod")
    pipeline.run(unpod())  # SOURCES__UNPOD__API_TOKEN and SOURCES__UNPOD__ORG_HANDLE (or SPACE_TOKENS)

A hidden resource, ``space_list``, finds the spaces (the organization's list, or the tokens given); the hidden
transformer ``space_pages`` reads them concurrently (each with its own cursor, see ``incremental.py``) and yields every
page as it arrives; transformers route what a page holds to the tables ``runs``, ``runs_rejected``, ``spaces``,
``run_cursor``, ``run_status_history`` (see ``status_history.py``) and ``space_outcomes``. A space's cursor is written
to the source state only when the whole space was read, so a failed space does not advance; its outcome row says why.
dlt commits the state and every table with the same load.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Optional

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
import pyarrow as pa
import pyarrow.compute as pc

from unpod_runs.api.client import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RETRY_DELAY,
    DEFAULT_TIMEOUT,
    RequestStats,
    UnpodClient,
    check_base_url,
)
from unpod_runs.pipeline.config import (
    DEFAULT_BASE_URL,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUEST_COST_RUNS,
    DEFAULT_WORKERS,
    check_source_settings,
    parse_space_tokens,
)
from unpod_runs.api.errors import AuthError, ConfigError, SpacesUnavailable, UnpodError
from unpod_runs.pipeline.incremental import (
    OPEN_RUNS_SCHEMA,
    PageBatch,
    SpaceCursor,
    SpaceReader,
    SpaceResult,
    cursor_rows,
    empty_open_runs,
    open_runs_from_state,
)
from unpod_runs.pipeline.progress import Progress
from unpod_runs.pipeline.records import RUNS_SCHEMA, TIMESTAMP
from unpod_runs.pipeline.status_history import HISTORY_COLUMNS, HISTORY_TABLE, keep_first_seen, seen_again, seen_versions, version_keys

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
MERGE = {"disposition": "merge", "strategy": "delete-insert"}
# dlt's name for each Arrow type of the schemas that define the rows (records.py, incremental.py).
_DLT_TYPES = {pa.string(): "text", pa.int64(): "bigint", TIMESTAMP: "timestamp"}


def _columns(schema: pa.Schema) -> dict[str, dict]:
    """dlt's column hints for an Arrow schema, in its order."""
    return {field.name: {"data_type": _DLT_TYPES[field.type], "nullable": field.nullable} for field in schema}


RUN_COLUMNS = _columns(RUNS_SCHEMA)
# Offset paging over live data can serve a run twice in one load: its latest version wins.
RUN_COLUMNS["modified"]["dedup_sort"] = "desc"
REJECTED_COLUMNS = {
    "item_key": {"data_type": "text", "nullable": False},
    "space_token": {"data_type": "text"},
    "page": {"data_type": "bigint"},
    "position": {"data_type": "bigint"},
    "reason": {"data_type": "text"},
    "raw_item": {"data_type": "text"},
    "seen_at": {"data_type": "timestamp", "dedup_sort": "desc"},
}

# An open run of the cursor (incremental.py) with its space; a row marked closed is deleted by the merge.
CURSOR_COLUMNS = {
    "run_id": {"data_type": "text", "nullable": False},
    "space_token": {"data_type": "text"},
    **{name: hints for name, hints in _columns(OPEN_RUNS_SCHEMA).items() if name != "run_id"},
    "closed": {"data_type": "bool", "hard_delete": True},
}
CURSOR_TABLE = "run_cursor"

OUTCOMES_TABLE = "space_outcomes"
OUTCOME_COLUMNS = {
    "space_token": {"data_type": "text", "nullable": False},
    "outcome": {"data_type": "text"},  # "ok": read whole, its cursor advanced; "failed": see error
    "error": {"data_type": "text"},
    "mode": {"data_type": "text"},  # "full" or "incremental"; NULL for a failed space
    "runs_listed": {"data_type": "bigint"},  # at its last success, for a failed space
    "open_runs": {"data_type": "bigint"},
    "requests": {"data_type": "bigint"},
    "runs_changed": {"data_type": "bigint"},
    "runs_rejected": {"data_type": "bigint"},
    "attempted_at": {"data_type": "timestamp"},
    "last_success_at": {"data_type": "timestamp"},
}

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
class SpaceList:
    """Every space to read tonight, handed on as one item: they are read together, on a pool of threads."""

    targets: list[SpaceTarget]


@dataclass(frozen=True)
class SpaceDetails:
    token: str
    fields: dict


@dataclass(frozen=True)
class VersionsSeen:
    """Rows of ``unpod.run_status_history``."""

    table: pa.Table


@dataclass(frozen=True)
class SpaceOutcome:
    """A row of ``space_outcomes``: how tonight's read of one space ended."""

    row: dict


@dataclass
class Chunk:
    """Many pages at once: dlt spends milliseconds per item on hints, so items should be large."""

    runs: list[pa.Table] = field(default_factory=list)
    cursor: list[pa.Table] = field(default_factory=list)
    history: list[pa.Table] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    spaces: list[dict] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)
    rows: int = 0


def _chunks(items: Iterator[PageBatch | SpaceDetails | VersionsSeen | SpaceOutcome | pa.Table],
            max_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    chunk = Chunk()
    for item in items:
        if isinstance(item, SpaceOutcome):
            chunk.outcomes.append(item.row)
        elif isinstance(item, SpaceDetails):
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
    if chunk.runs or chunk.cursor or chunk.history or chunk.rejected or chunk.spaces or chunk.outcomes:
        yield chunk


class _Cancelled(Exception):
    """Raised in a worker when the extraction as a whole has stopped."""


@dlt.source(name="unpod", max_table_nesting=1)
def unpod(
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    org_handle: Optional[str] = None,
    space_tokens: Optional[Any] = None,  # a list, or a string holding one (see config.parse_space_tokens)
    page_size: int = DEFAULT_PAGE_SIZE,
    workers: int = DEFAULT_WORKERS,
    request_cost_runs: int = DEFAULT_REQUEST_COST_RUNS,
    full_scan: bool = False,
    allow_insecure_http: bool = False,
    request_timeout: float = DEFAULT_TIMEOUT,
    request_max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    request_backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
    request_max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY,
    request_stats: Optional[RequestStats] = None,
) -> Any:
    """The runs of every space of ``org_handle``, or of the spaces ``space_tokens`` (a list, or "A,B").

    Every argument is also read from dlt's configuration under ``sources.unpod`` (``SOURCES__UNPOD__API_TOKEN``...).
    A space that fails does not stop the others: its row in ``space_outcomes`` says why, and its cursor stays.
    ``full_scan`` re-reads every page. ``request_stats``, when given, counts every request and retry.
    Raises ``ConfigError`` at once for settings that cannot work; ``AuthError`` (the token refused) and
    ``SpacesUnavailable`` stop the extraction.
    """
    tokens = parse_space_tokens(space_tokens)
    check_source_settings(org_handle, tokens, page_size, workers)
    client = UnpodClient(
        check_base_url(base_url, allow_insecure_http),
        api_token,
        org_handle=org_handle,
        timeout=request_timeout,
        max_attempts=request_max_attempts,
        backoff_factor=request_backoff_factor,
        max_retry_delay=request_max_retry_delay,
        stats=request_stats,
    )

    @dlt.resource(selected=False)
    def space_list() -> Iterator[SpaceList]:
        yield SpaceList(_space_targets(client, tokens))

    @dlt.transformer(data_from=space_list, selected=False)
    def space_pages(spaces: SpaceList) -> Iterator[Chunk]:
        yield from _chunks(_read_spaces(client, spaces.targets, page_size, workers, full_scan, request_cost_runs))

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

    @dlt.transformer(
        data_from=space_pages, name=OUTCOMES_TABLE, primary_key="space_token", write_disposition=MERGE,
        columns=OUTCOME_COLUMNS,
    )
    def space_outcomes(chunk: Chunk) -> Iterator[Any]:
        """One row per space read: committed with its runs, so the outcome and the data never disagree."""
        if chunk.outcomes:
            yield chunk.outcomes

    return space_list, space_pages, runs, runs_rejected, spaces_table, run_cursor, run_status_history, space_outcomes


def _space_targets(client: UnpodClient, space_tokens: list[str] | None) -> list[SpaceTarget]:
    """The spaces given by token, or else every space the organization lists (with their fields)."""
    if space_tokens:
        return [SpaceTarget(token) for token in dict.fromkeys(space_tokens)]
    try:
        spaces = client.list_spaces()
    except (AuthError, ConfigError):
        raise
    except UnpodError as exc:
        raise SpacesUnavailable(f"could not list the spaces of organization {client.org_handle!r}: {exc}") from None
    targets = []
    for space in spaces:
        token = space.get("token") if isinstance(space, dict) else None
        if isinstance(token, str) and token:
            targets.append(SpaceTarget(token, space))
        else:
            log.warning("event=space_without_token item=%r", str(space)[:200])
    log.info("event=spaces_discovered org=%s spaces=%d", client.org_handle, len(targets))
    return targets


def _read_spaces(
    client: UnpodClient,
    targets: list[SpaceTarget],
    page_size: int,
    workers: int,
    full_scan: bool,
    request_cost: int,
) -> Iterator[PageBatch | SpaceDetails | VersionsSeen | SpaceOutcome | pa.Table]:
    """Read spaces on a bounded pool of threads, yielding their pages in the extract thread."""
    attempted_at = _utcnow()
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
                yield SpaceOutcome(_success_row(payload, attempted_at))
                log.info(
                    "event=space_loaded space=%s mode=%s requests=%d runs_seen=%d open_runs=%d rejected=%d",
                    payload.space_token, "full" if payload.full_pass else "incremental", payload.pages_read,
                    payload.runs_seen, payload.cursor.open_runs, payload.rejected,
                )
            elif kind == "failed":
                remaining -= 1
                token, message = payload
                yield SpaceOutcome(_failure_row(token, message, cursors[token], attempted_at))
                log.error("event=space_failed space=%s error=%r", token, message)
            elif kind == "auth":
                raise payload
    finally:
        progress.close()
        cancelled.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _success_row(result: SpaceResult, attempted_at: datetime) -> dict:
    return {
        "space_token": result.space_token,
        "outcome": "ok",
        "error": None,
        "mode": "full" if result.full_pass else "incremental",
        "runs_listed": result.cursor.count,
        "open_runs": result.cursor.open_runs,
        "requests": result.pages_read,
        "runs_changed": result.changed_runs,
        "runs_rejected": result.rejected,
        "attempted_at": attempted_at,
        "last_success_at": attempted_at,
    }


def _failure_row(token: str, error: str, cursor: SpaceCursor | None, attempted_at: datetime) -> dict:
    """A failed space keeps the cursor of its last success: its counts and time are that success's."""
    return {
        "space_token": token,
        "outcome": "failed",
        "error": error,
        "mode": None,
        "runs_listed": cursor.count if cursor else None,
        "open_runs": cursor.open_runs if cursor else None,
        "requests": None,
        "runs_changed": None,
        "runs_rejected": None,
        "attempted_at": attempted_at,
        "last_success_at": datetime.fromisoformat(cursor.loaded_at) if cursor and cursor.loaded_at else None,
    }


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
