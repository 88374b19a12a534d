"""Which runs of a space to read tonight, and what to remember for tomorrow.

The API has no filters and lists runs newest *created* first with offset paging, and a status change may not bump
``modified``. The runs a night must see are the runs created since the last load (at the top) and the runs still open
at the last load, however old (terminal runs are assumed final). So the rule is positional:

* **Rank.** Each open run is remembered with its *rank*: how many runs are older than it. Insertions at the top never
  change a rank, so tonight it stands at offset ``count - 1 - rank``. Deletions of older runs lower a rank; how far is
  bounded by the counts (``deleted <= count_before + created - count_now``), and a run's shift is bracketed by the
  shifts of the open runs found around it (older runs shift no more, newer ones no less).
* **The top.** A small first request, growing while everything on it is new, down to the first run known from the
  last load: everything above it is new.
* **Windows.** The positions to read are covered by requests of any size (``planner.py``), chosen by a cost model.
* **Coverage in rank space.** Every response says, through its live ``count``, which ranks it read; positions are
  recomputed from the latest count before each round, so runs created while paging move nothing that matters, and a
  count that shrank (deletions while paging) makes the rounds look again.
* **Slack.** A run not found where the counts allow (changes while paging can hide one) is kept as last seen and
  looked for again at the next load in a bracket twice as wide, until it is found or the bracket reaches the bottom.

The cursor is small state per space in dlt's source state (count, top ids, newest created) plus one row per open run
in the table ``unpod.run_cursor`` (rank, status, modified, slack, and when that version was first seen), both
committed with the load that read them.

Only rows that can have changed go on to be loaded: new runs, and open runs whose status or ``modified`` moved. A
space with no cursor (first load, a space added since) and ``--full-scan`` read every page.

Every row read is stamped with its response's ``Date`` (the API's clock) for ``unpod.run_status_history``: the rows
that go on carry it in their ``PageBatch``, and the open runs found unchanged are in the result's ``seen_unchanged``
(a version whose ``last_seen_at`` moves), so the history costs what the night read.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from unpod_runs.api.client import RunsPage
from unpod_runs.pipeline.config import DEFAULT_REQUEST_COST_RUNS
from unpod_runs.pipeline.planner import (
    Window,
    aligned_blocks,
    merged_ranges,
    next_top_windows,
    plan_windows,
    shift_brackets,
    where_it_can_be,
)
from unpod_runs.pipeline.records import TIMESTAMP, ParsedPage, open_mask, parse_page

log = logging.getLogger(__name__)

CURSOR_VERSION = 2
TOP_IDS_KEPT = 50
FIRST_TOP_REQUEST = 50  # runs; SPEC: "one first page of at most 50 runs per space"
MAX_PASSES = 3
SEARCH_ROUNDS = 4
MAX_RUNS_PER_REQUEST = 10_000  # the API has no maximum page size; one response stays of a sensible size
REQUESTS_IN_FLIGHT = 4  # per space, for the windows of one round: their round trips overlap

OPEN_RUNS_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("rank", pa.int64()), ("status", pa.string()), ("modified", TIMESTAMP),
     ("slack", pa.int64()), ("first_seen_at", TIMESTAMP)]
)
# Open runs found tonight with the version they had at the last load: that version's history row moves on.
SEEN_UNCHANGED_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("status", pa.string()), ("modified", TIMESTAMP), ("first_seen_at", TIMESTAMP),
     ("last_seen_at", TIMESTAMP)]
)


class RunsClient(Protocol):
    def runs_page(self, space_token: str, page: int, page_size: int) -> RunsPage: ...


@dataclass
class SpaceCursor:
    """The small per-space part of the incremental state, kept in dlt's source state (committed with the load).

    The open runs themselves (possibly hundreds of thousands) live in the table ``unpod.run_cursor``, written in the
    same load: dlt compresses its state at every load, which would cost seconds at that size.
    """

    count: int
    top_ids: list[str]
    newest_created: str | None
    loaded_at: str
    open_runs: int = 0

    def to_state(self) -> dict:
        return {
            "version": CURSOR_VERSION,
            "count": self.count,
            "top_ids": self.top_ids,
            "newest_created": self.newest_created,
            "loaded_at": self.loaded_at,
            "open_runs": self.open_runs,
        }

    @classmethod
    def from_state(cls, state: dict | None) -> "SpaceCursor | None":
        if not state:
            return None
        open_runs = state.get("open_runs") or 0
        return cls(
            count=int(state["count"]),
            top_ids=list(state["top_ids"]),
            newest_created=state.get("newest_created"),
            loaded_at=state.get("loaded_at", ""),
            open_runs=len(open_runs) if isinstance(open_runs, dict) else int(open_runs),
        )


def open_runs_from_state(state: dict | None) -> pa.Table | None:
    """The open runs of a version-1 cursor (a dict in the state), for the first load after an upgrade."""
    legacy = (state or {}).get("open_runs")
    if not isinstance(legacy, dict):
        return None
    ids = list(legacy)
    return pa.table(
        {
            "run_id": pa.array(ids, pa.string()),
            "rank": pa.array([int(legacy[run_id][0]) for run_id in ids], pa.int64()),
            "status": pa.array([legacy[run_id][1] for run_id in ids], pa.string()),
            "modified": pa.array(
                [datetime.fromisoformat(legacy[run_id][2]) if legacy[run_id][2] else None for run_id in ids], TIMESTAMP
            ),
            "slack": pa.array([0] * len(ids), pa.int64()),
            "first_seen_at": pa.nulls(len(ids), TIMESTAMP),
        },
        schema=OPEN_RUNS_SCHEMA,
    )


def empty_open_runs() -> pa.Table:
    return OPEN_RUNS_SCHEMA.empty_table()


@dataclass
class PageBatch:
    """What one request produced, handed to the dlt resources."""

    space_token: str
    page: int
    parsed: ParsedPage
    count: int = 0  # runs the space listed at the moment of this request
    served: int = 0  # items the server sent in this response (good, rejected and filtered alike)
    seen_at: pa.Array | None = None  # per row of ``parsed.table``: the Date of the response that held it


@dataclass
class SpaceResult:
    space_token: str
    cursor: SpaceCursor
    full_pass: bool
    open_runs: pa.Table  # every run open now, with its rank
    cursor_changes: pa.Table  # rows of unpod.run_cursor to write: new or moved open runs, and `closed` ones to drop
    seen_unchanged: pa.Table  # open runs found with their last version (SEEN_UNCHANGED_SCHEMA)
    pages_read: int = 0
    runs_seen: int = 0
    runs_served: int = 0
    changed_runs: int = 0
    rejected: int = 0
    unlisted: int = 0


@dataclass
class _Found:
    """What tonight's responses said about each run open at the last load (indexed like ``previous``)."""

    rank: np.ndarray  # its rank tonight, -1 while not found
    response: np.ndarray  # which of tonight's responses it was found in
    status: list
    modified: list
    unlisted: np.ndarray  # its whole bracket was read and it was not there


class SpaceReader:
    """Reads one space's runs with the incremental rule, emitting every response's changed rows as it arrives."""

    def __init__(
        self,
        client: RunsClient,
        space_token: str,
        cursor: SpaceCursor | None,
        previous_open: pa.Table | None,
        page_size: int,
        full_scan: bool,
        emit: Callable[[PageBatch], None],
        now: Callable[[], datetime],
        request_cost: int = DEFAULT_REQUEST_COST_RUNS,
        requests_in_flight: int = REQUESTS_IN_FLIGHT,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.client = client
        self.space_token = space_token
        self.cursor = cursor
        self.page_size = page_size
        self.full_pass = full_scan or cursor is None
        self.emit = emit
        self.now = now
        self.request_cost = max(0, request_cost)
        self.requests_in_flight = requests_in_flight
        self.window_pool: ThreadPoolExecutor | None = None  # while read() runs, with more than one request in flight
        previous = previous_open if previous_open is not None else empty_open_runs()
        if "slack" not in previous.column_names:
            previous = previous.append_column("slack", pa.array([0] * previous.num_rows, pa.int64()))
        if "first_seen_at" not in previous.column_names:  # a cursor kept before the history was
            previous = previous.append_column("first_seen_at", pa.nulls(previous.num_rows, TIMESTAMP))
        previous = previous.select(OPEN_RUNS_SCHEMA.names).cast(OPEN_RUNS_SCHEMA)
        self.previous = previous.sort_by([("rank", "ascending")])
        self.previous_ids = self.previous["run_id"].combine_chunks()
        self.previous_ranks = self.previous["rank"].to_numpy()
        # A hash index built once: Arrow's index_in hashes the whole value set again on every call.
        self.previous_position = dict(zip(self.previous_ids.to_pylist(), range(len(self.previous_ids))))
        # How much further than the counts allow a run may have moved: it was not found where it should have been,
        # on a night whose counts changed while paging. Its search widens (doubling) until it is found.
        self.previous_slack = np.nan_to_num(self.previous["slack"].to_numpy(zero_copy_only=False)).astype(np.int64)
        self.found = _Found(
            rank=np.full(len(self.previous), -1, np.int64),
            response=np.zeros(len(self.previous), np.int64),
            status=[None] * len(self.previous),
            modified=[None] * len(self.previous),
            unlisted=np.zeros(len(self.previous), bool),
        )
        # Open runs that were not open at the last load, with their ranks, and which response held each.
        self.new_open: list[tuple[np.ndarray, pa.Table]] = []
        self.emitted: dict[str, str | None] = {}  # run_id -> status sent on: overlapping windows may read a run twice
        self.counts: list[int] = []  # every response's live count, in the order requested
        self.dates: list[datetime] = []  # every response's Date (the API's clock), in the order requested
        self._date_us = np.zeros(0, np.int64)  # the same, in microseconds, as far as _dates_of has needed them
        self.falls: list[int] = []  # per response: how many runs can have been deleted just before it
        self.batch_falls: list[int] = []  # per response: what its batch of concurrent requests can hide
        self.covered: list[tuple[int, int]] = []  # rank ranges [low, high] read in this pass
        self.top_ids: list[str] = []
        self.newest: datetime | None = _parse_iso(cursor.newest_created) if cursor else None
        self.created_upper = 0
        self.deleted_bound = 0  # how many runs the counts allow to have been deleted since the last load
        self.boundary_offset: int | None = None  # set by a top-of-list response holding a run known before
        self.top_read_stop = 0
        self.top_count = 0
        self.top_seen: list[str] = []
        self.runs_read = self.runs_served = self.rejected = self.requests = 0

    # The night

    def read(self) -> SpaceResult:
        # One pool of request threads for the whole read: its threads start once, not again for every round.
        with ThreadPoolExecutor(max(1, self.requests_in_flight), thread_name_prefix="unpod-window") as pool:
            self.window_pool = pool if self.requests_in_flight > 1 else None
            try:
                if self.full_pass:
                    self._read_everything()
                else:
                    self._read_changes()
            finally:
                self.window_pool = None
        return self._result()

    def _read_changes(self) -> None:
        known = pa.array(sorted(set(self.cursor.top_ids)), pa.string())
        boundary = pa.concat_arrays([known, self.previous_ids]) if len(self.previous_ids) else known
        first = min(FIRST_TOP_REQUEST, self.page_size)
        self._read_top(boundary, fallback=True, first=first, known_count=self.cursor.count)
        top_boundary = boundary
        deleted_bound = max(0, self.cursor.count + self.created_upper - self.counts[-1])
        self.deleted_bound = deleted_bound
        for attempt in range(1, MAX_PASSES + 1):
            shrank_before = self._shrinkage()
            self._find_open_runs(deleted_bound + shrank_before)
            if self._shrinkage() == shrank_before:
                break
            # Runs were deleted while paging: ranks read earlier may have moved. Look again where it matters.
            log.warning("event=drift space=%s pass=%d counts=%s action=search_again", self.space_token, attempt,
                        self.counts[-8:])
            self.covered = []
            self.found.unlisted[self.found.rank < 0] = False
            deleted_bound += self._shrinkage() - shrank_before
            self.deleted_bound = deleted_bound
        if self._shrinkage():
            # A run deleted while the top was read pulled the runs below it up: a new one may have slipped past.
            self._read_top(top_boundary, fallback=True, first=first, known_count=self.cursor.count)
        self._catch_up_with_the_top()

    def _catch_up_with_the_top(self) -> None:
        """Runs created while paging sit above the top read tonight: read down to the runs seen there before.

        One request, sized to what the count grew by, normally reaches them.
        """
        for _ in range(MAX_PASSES):
            if max(self.counts) <= self.top_count:
                return
            grown = max(self.counts) - self.top_count
            self._read_top(pa.array(list(dict.fromkeys(self.top_seen)), pa.string()), fallback=False,
                           first=grown + 1, known_count=self.top_count)

    def _read_everything(self) -> None:
        """Page 1 gives the count; the rest is read in big aligned windows, then on to the end."""
        response = self._fetch(Window(1, self.page_size), region="all")
        self.top_count = response.count
        self.top_seen = list(self.top_ids)
        if len(response.items) < self.page_size or self.page_size >= response.count:
            return
        last_page = -(-response.count // self.page_size)
        for page, pages in aligned_blocks(list(range(2, last_page + 1)), _pages_per_full_window(self.page_size)):
            response = self._fetch(Window(page, pages * self.page_size), region="all")
        # Runs created meanwhile pushed the oldest ones further down: follow them to the end of the list.
        page = last_page + 1
        while len(response.items) and (page - 1) * self.page_size < response.count:
            response = self._fetch(Window(page, self.page_size), region="all")
            page += 1
        self._catch_up_with_the_top()

    def _read_top(self, boundary: pa.Array, fallback: bool, first: int, known_count: int) -> None:
        """Read from the top down to the first run known before: every run above it is new.

        ``fallback``: when every remembered id is gone, a run created before the newest one seen ends the read too,
        once at least as many runs as the count grew by have been read (so a backdated new run cannot end it early).
        """
        windows = [Window(1, first)]
        self.top_seen: list[str] = []
        read_until = 0
        while windows:
            for window in windows:
                response = self._fetch(window, region="top", boundary=boundary, fallback=fallback)
                if self.boundary_offset is not None or len(response.items) < window.page_size \
                        or window.stop >= response.count:
                    self.top_count = response.count
                    self._finish_top()
                    return
                read_until = max(read_until, window.stop)
            windows = next_top_windows(read_until, response.count - known_count + 1)

    def _finish_top(self) -> None:
        stop = self.boundary_offset if self.boundary_offset is not None else self.top_read_stop
        self.created_upper = max(self.created_upper, stop)
        self.boundary_offset = None

    def _find_open_runs(self, deleted_bound: int) -> None:
        """Read where the runs open at the last load can be now, in rounds, until each is found or shown gone."""
        for round_number in range(SEARCH_ROUNDS):
            todo = np.flatnonzero((self.found.rank < 0) & ~self.found.unlisted)
            if not len(todo):
                return
            low, high = shift_brackets(self.previous_ranks, self.found.rank, self.previous_slack, deleted_bound)
            count = self.counts[-1]
            covered = merged_ranges(self.covered)
            budget = 2 * len(todo)
            ranks = self.previous_ranks
            full = [where_it_can_be(int(ranks[index]), int(low[index]), int(high[index]), count, covered)
                    for index in todo]
            if round_number == 0 and sum(stop - start for ranges in full for start, stop in ranges) > budget:
                # Too wide to read whole: probe each run where it stands if every deletion was newer than it, and
                # where it stands if every one was older. The runs found bracket the others for the next round.
                needed = [piece for index in todo
                          for shift in {int(low[index]), int(high[index])}
                          for piece in where_it_can_be(int(ranks[index]), shift, shift, count, covered)]
            else:
                needed = [piece for ranges in full for piece in ranges]
                for index, ranges in zip(todo, full):
                    if not ranges:  # its whole bracket was read and it was not there: the API no longer lists it
                        self.found.unlisted[index] = True
            self._fetch_all(plan_windows(needed, self.request_cost, budget, max_window=MAX_RUNS_PER_REQUEST))

    # One request

    def _fetch_all(self, windows: list[Window]) -> None:
        """The independent windows of one round for open runs: a few requests in flight at once (their round trips
        overlap), and their runs taken as one table (a response of one run costs as much to convert as a hundred)."""
        if not windows:
            return
        if len(windows) > 1 and self.window_pool is not None:
            responses = list(self.window_pool.map(self._request, windows))
        else:
            responses = [self._request(window) for window in windows]
        items: list = []
        ranks: list[np.ndarray] = []
        answered: list[np.ndarray] = []
        first = len(self.counts)
        before = self.counts[-1] if self.counts else responses[0].count
        for window, response in zip(windows, responses):
            self._record(window, response)
            items.extend(response.items)
            ranks.append(response.count - 1 - window.start - np.arange(len(response.items)))
            answered.append(np.full(len(response.items), len(self.counts) - 1))
        batch = self.counts[first:]
        steps = [before, *batch]
        if len(batch) > 1 and any(later < earlier for earlier, later in zip(steps, steps[1:])):
            # Requests in flight together were served in an unknown order: a count that fell anywhere in the batch
            # may stand for deletions before any of its responses, and rises between falls for more of them.
            fall = max(max(steps) - min(batch),
                       sum(max(0, earlier - later) for earlier, later in zip(steps, steps[1:])))
            self.falls[first:] = [fall] + [0] * (len(batch) - 1)
            self.batch_falls[first:] = [fall] * len(batch)
        parsed = parse_page(self.space_token, windows[0].page, items, self.now())
        table = parsed.table
        seen_at = None
        if table is not None:
            positions = parsed.positions.to_numpy()
            row_answered = np.concatenate(answered)[positions]
            keep = self._take(table, np.concatenate(ranks)[positions], row_answered, "open",
                              np.zeros(table.num_rows, bool))
            table = table.filter(pa.array(keep))
            seen_at = self._dates_of(row_answered[keep])
        # Bad items in windows read for open runs are not reported: they were, when they were new.
        self.emit(PageBatch(self.space_token, windows[0].page,
                            ParsedPage(table if table is not None and table.num_rows else None,
                                       pa.array([], pa.int64()), []),
                            self.counts[-1], len(items), seen_at))

    def _request(self, window: Window) -> RunsPage:
        return self.client.runs_page(self.space_token, window.page, window.page_size)

    def _record(self, window: Window, response: RunsPage) -> None:
        """Count a response, and note which ranks it read (its live count says where its window fell)."""
        self.requests += 1
        self.runs_served += len(response.items)
        self.falls.append(max(0, self.counts[-1] - response.count) if self.counts else 0)
        self.batch_falls.append(0)
        self.counts.append(response.count)
        # A response without a usable Date (never so from the API) is stamped with this machine's clock.
        self.dates.append(response.date or self.now())
        if response.items:
            high = response.count - 1 - window.start
            self.covered.append((high - len(response.items) + 1, high))

    def _fetch(self, window: Window, region: str, boundary: pa.Array | None = None,
               fallback: bool = False) -> RunsPage:
        """One request down the list, and what it says: ranks read, the first known run, rows to load.

        ``region``: "all" (a full pass: every row goes on) or "top" (rows above the first known run are new).
        """
        response = self._request(window)
        self._record(window, response)
        offset = window.start
        parsed = parse_page(self.space_token, window.page, response.items, self.now())
        table = parsed.table
        if region == "top":
            self.top_read_stop = offset + len(response.items)
            self.boundary_offset = None
        if offset == 0:
            self.top_ids = table["run_id"].slice(0, TOP_IDS_KEPT).to_pylist() if table is not None else []
        if table is not None:
            positions = parsed.positions.to_numpy()
            is_new = np.ones(table.num_rows, bool)
            if region == "top":
                cut = self._boundary_in(table, positions, offset, response.count, boundary, fallback)
                self.boundary_offset = cut
                self.top_seen.extend(table["run_id"].slice(0, TOP_IDS_KEPT).to_pylist())
                if cut is not None:
                    is_new = offset + positions < cut
            newest = pc.max(table["created"]).as_py()
            if newest is not None and (self.newest is None or newest > self.newest):
                self.newest = newest
            keep = self._take(table, response.count - 1 - offset - positions,
                              np.full(table.num_rows, len(self.counts) - 1), region, is_new)
            table = table.filter(pa.array(keep))
            parsed = ParsedPage(table if table.num_rows else None, parsed.positions.filter(pa.array(keep)),
                                parsed.rejected)
        self.rejected += len(parsed.rejected)
        seen_at = pa.array([self.dates[-1]] * (parsed.table.num_rows if parsed.table is not None else 0), TIMESTAMP)
        self.emit(PageBatch(self.space_token, window.page, parsed, response.count, len(response.items), seen_at))
        return response

    def _take(self, table: pa.Table, ranks: np.ndarray, answered: np.ndarray, region: str,
              is_new: np.ndarray) -> np.ndarray:
        """Note what runs read say for tomorrow; return which of them go on to be loaded.

        ``ranks`` and ``answered`` (which of tonight's responses held it) are per row.
        """
        self.runs_read += table.num_rows
        ids = table["run_id"].to_pylist()
        position = self.previous_position.get
        previous_index = np.fromiter((position(run_id, -1) for run_id in ids), np.int64, len(ids))
        was_open = previous_index >= 0
        keep = is_new | self._note_previous_open(table, ranks, answered, previous_index, was_open)
        # An open run that was not open before: a new one, or one a full pass had not seen.
        unknown_open = open_mask(table).to_numpy(zero_copy_only=False) & ~was_open
        if unknown_open.any():
            mask = pa.array(unknown_open)
            self.new_open.append((answered[unknown_open], pa.table({
                "run_id": table["run_id"].filter(mask),
                "rank": pa.array(ranks[unknown_open], pa.int64()),
                "status": table["status"].filter(mask),
                "modified": table["modified"].filter(mask),
                "slack": pa.array([0] * int(unknown_open.sum()), pa.int64()),
                "first_seen_at": self._dates_of(answered[unknown_open]),
            }, schema=OPEN_RUNS_SCHEMA)))
            keep |= unknown_open
        if region != "all" and keep.any():
            rows = np.flatnonzero(keep)
            statuses = table["status"].take(pa.array(rows)).to_pylist()
            for row, status in zip(rows.tolist(), statuses):
                run_id = ids[row]
                if run_id in self.emitted and self.emitted[run_id] == status:
                    keep[row] = False
                else:
                    self.emitted[run_id] = status
        return keep

    def _boundary_in(self, table: pa.Table, positions: np.ndarray, offset: int, count: int, boundary: pa.Array,
                     fallback: bool) -> int | None:
        """The offset of the first run on this response known from before, if any."""
        known = pc.is_in(table["run_id"], value_set=boundary).to_numpy(zero_copy_only=False)
        if known.any():
            return int(offset + positions[np.argmax(known)])
        grown = count - (self.cursor.count if self.cursor else 0)
        if fallback and self.newest_before is not None and offset + len(positions) >= grown:
            created = table["created"]
            older = pc.fill_null(pc.less(created, pa.scalar(self.newest_before, created.type)), False)
            older = older.to_numpy(zero_copy_only=False) & (offset + positions >= grown)
            if older.any():
                return int(offset + positions[np.argmax(older)])
        return None

    @property
    def newest_before(self) -> datetime | None:
        return _parse_iso(self.cursor.newest_created) if self.cursor else None

    def _note_previous_open(self, table: pa.Table, ranks: np.ndarray, answered: np.ndarray,
                            previous_index: np.ndarray, was_open: np.ndarray) -> np.ndarray:
        """Record the runs open at the last load that this response holds; True where one changed (to load it)."""
        changed = np.zeros(table.num_rows, bool)
        rows = np.flatnonzero(was_open)
        if not len(rows):
            return changed
        row_array = pa.array(rows)
        targets = previous_index[rows]
        self.found.rank[targets] = ranks[rows]
        self.found.response[targets] = answered[rows]
        self.found.unlisted[targets] = False
        statuses = table["status"].take(row_array)
        modified = table["modified"].take(row_array)
        target_array = pa.array(targets)
        changed[rows] = ~_same(statuses, modified, self.previous["status"].take(target_array),
                               self.previous["modified"].take(target_array))
        for target, status, stamp in zip(targets.tolist(), statuses.to_pylist(), _microseconds(modified)):
            self.found.status[target] = status
            self.found.modified[target] = stamp
        return changed

    def _dates_of(self, responses: np.ndarray) -> pa.Array:
        """The Date of each given response (indexes into tonight's responses)."""
        if len(self._date_us) < len(self.dates):  # the responses since the last call, in microseconds once
            self._date_us = np.concatenate([self._date_us, pa.array(self.dates[len(self._date_us):], TIMESTAMP)
                                            .cast(pa.int64()).to_numpy()])
        return pa.array(self._date_us[responses], pa.int64()).cast(TIMESTAMP)

    def _deleted_after(self, responses: np.ndarray) -> np.ndarray:
        """Runs that can have been deleted after each given response tonight: ranks read then are that much too high.

        A response shares the uncertainty of the requests that were in flight with it."""
        falls = np.array(self.falls or [0], np.int64)
        after = np.concatenate([np.cumsum(falls[::-1])[::-1][1:], [0]])
        index = np.clip(responses, 0, len(falls) - 1)
        return after[index] + np.array(self.batch_falls or [0], np.int64)[index]

    def _slack_after_miss(self) -> np.ndarray:
        """A run not found tonight may have moved by more than the counts allow: double how far to look."""
        return np.minimum(2 * (self.previous_slack + self.deleted_bound) + 1, self.previous_ranks)

    def _shrinkage(self) -> int:
        """How many runs can have been deleted while paging tonight, as the live counts tell."""
        return sum(self.falls)

    # Tomorrow

    def _result(self) -> SpaceResult:
        found = self.found.rank >= 0
        found_status = pa.array(self.found.status, pa.string())
        found_modified = pa.array(self.found.modified, pa.int64()).cast(TIMESTAMP)
        unchanged = found & _same(found_status, found_modified, self.previous["status"], self.previous["modified"])
        found_at = self._dates_of(np.where(found, self.found.response, 0))
        # A version seen before keeps the moment it was first seen; a cursor kept before the history was has none.
        kept_first_seen = pc.coalesce(self.previous["first_seen_at"], found_at)
        now = pa.table({
            "run_id": self.previous_ids,
            "rank": pa.array(np.where(found, self.found.rank, self.previous_ranks), pa.int64()),
            "status": pc.if_else(pa.array(found), found_status, self.previous["status"]),
            "modified": pc.if_else(pa.array(found), found_modified, self.previous["modified"]),
            "slack": pa.array(np.where(found, self._deleted_after(self.found.response), self._slack_after_miss()),
                              pa.int64()),
            "first_seen_at": pc.if_else(pa.array(found & ~unchanged), found_at, kept_first_seen),
        }, schema=OPEN_RUNS_SCHEMA)
        seen_unchanged = pa.table({
            "run_id": self.previous_ids,
            "status": self.previous["status"],
            "modified": self.previous["modified"],
            "first_seen_at": kept_first_seen,
            "last_seen_at": found_at,
        }, schema=SEEN_UNCHANGED_SCHEMA).filter(pa.array(unchanged))
        version_moved = found & ~unchanged
        still_open = found & open_mask(now).to_numpy(zero_copy_only=False)
        # Not found: gone after a full pass, or after a search that read its whole bracket on a night whose count
        # never fell while paging, if its rank was exact (no slack) or the bracket reached the bottom of the list.
        # Otherwise it is kept as last seen, and looked for again next time, wider.
        trusted = (self.previous_slack == 0) | (self.previous_slack + self.deleted_bound >= self.previous_ranks)
        searched_all = self.found.unlisted & ~found & (self._shrinkage() == 0) & trusted
        kept = ~found & ~searched_all & (not self.full_pass)
        moved = (still_open | kept) & (version_moved | (now["rank"].to_numpy() != self.previous_ranks)
                                       | (now["slack"].to_numpy() != self.previous_slack)
                                       | (found & pc.is_null(self.previous["first_seen_at"]).to_numpy(
                                           zero_copy_only=False)))
        closed = ~(still_open | kept)
        new_open = _last_per_run(pa.concat_tables([empty_open_runs()] + [
            table.set_column(4, "slack", pa.array(self._deleted_after(answered), pa.int64()))
            for answered, table in self.new_open]))
        open_runs = pa.concat_tables([now.filter(pa.array(still_open | kept)), new_open])
        changes = pa.concat_tables([
            cursor_rows(now.filter(pa.array(moved)), self.space_token, closed=False),
            cursor_rows(now.filter(pa.array(closed)), self.space_token, closed=True),
            cursor_rows(new_open, self.space_token, closed=False),
        ])
        unlisted = int(np.sum(searched_all)) if not self.full_pass else 0
        if unlisted:
            log.warning("event=open_runs_not_listed space=%s runs=%d note=%r", self.space_token, unlisted,
                        "no longer listed by the API: kept as last seen; the next --full-scan marks them deleted")
        if int(np.sum(kept)):
            log.warning("event=open_runs_not_found space=%s runs=%d note=%r", self.space_token, int(np.sum(kept)),
                        "not where the counts allow (changes while paging): looked for again, wider, next load")
        cursor = SpaceCursor(
            count=self.counts[-1] if self.counts else 0,
            top_ids=self.top_ids if self.top_ids or self.full_pass else (self.cursor.top_ids if self.cursor else []),
            newest_created=self.newest.isoformat() if self.newest else None,
            loaded_at=self.now().isoformat(),
            open_runs=open_runs.num_rows,
        )
        return SpaceResult(
            space_token=self.space_token,
            cursor=cursor,
            full_pass=self.full_pass,
            open_runs=open_runs,
            cursor_changes=changes,
            seen_unchanged=seen_unchanged,
            pages_read=self.requests,
            runs_seen=self.runs_read,
            runs_served=self.runs_served,
            changed_runs=int(np.sum(version_moved)),
            rejected=self.rejected,
            unlisted=unlisted,
        )


# The rows of unpod.run_cursor: one per open run; a row with ``closed`` deletes its run's row (dlt's hard delete).
CURSOR_TABLE_SCHEMA = pa.schema(
    [pa.field("run_id", pa.string(), nullable=False), ("space_token", pa.string()), ("rank", pa.int64()),
     ("status", pa.string()), ("modified", TIMESTAMP), ("slack", pa.int64()), ("first_seen_at", TIMESTAMP),
     ("closed", pa.bool_())]
)


def cursor_rows(runs: pa.Table, space_token: str, closed: bool) -> pa.Table:
    """Open runs as rows of ``unpod.run_cursor`` (``closed``: rows that delete them there)."""
    return pa.table({
        "run_id": runs["run_id"],
        "space_token": pa.array([space_token] * runs.num_rows, pa.string()),
        "rank": runs["rank"],
        "status": runs["status"],
        "modified": runs["modified"],
        "slack": runs["slack"],
        "first_seen_at": runs["first_seen_at"],
        "closed": pa.array([closed] * runs.num_rows, pa.bool_()),
    }, schema=CURSOR_TABLE_SCHEMA)


def _last_per_run(runs: pa.Table) -> pa.Table:
    """One row per run_id, the last one read (drift can show a run twice)."""
    if runs.num_rows < 2:
        return runs
    ids = runs["run_id"].to_pylist()
    last = {run_id: index for index, run_id in enumerate(ids)}
    if len(last) == len(ids):
        return runs
    return runs.take(pa.array(sorted(last.values())))


def _microseconds(timestamps: pa.Array | pa.ChunkedArray) -> list[int | None]:
    return timestamps.cast(pa.int64()).to_pylist()


def _same(status_a: pa.Array, modified_a: pa.Array, status_b: pa.Array, modified_b: pa.Array) -> np.ndarray:
    """Element-wise: the same version (status and ``modified``, a missing value equal only to a missing one)."""
    def equal(a: pa.Array, b: pa.Array) -> pa.Array:
        return pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))

    return pc.and_(equal(status_a, status_b), equal(modified_a, modified_b)).to_numpy(zero_copy_only=False)


def _pages_per_full_window(page_size: int) -> int:
    return max(1, MAX_RUNS_PER_REQUEST // page_size)


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
