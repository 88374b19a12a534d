"""Which pages of a space to read tonight, and what to remember for tomorrow.

The API has no filters and lists runs newest *created* first with offset paging, and a status change may
not bump ``modified``. So the rule is positional:

* New runs are at the top. Read pages from page 1 until a page holds a run known from the last load
  (one of the remembered top or open run ids; failing those, a run created before the newest one seen).
* Runs still open at the last load are the only old runs that can change (terminal runs are assumed
  final). For each we remember its *rank*: how many runs are older than it. Insertions at the top never
  change a rank, so tonight its page is ``(count - 1 - rank) // page_size + 1``. Only those pages are read;
  a run missing there (deletions moved it) is looked for one page either side.
* Offset paging drifts while runs are created or deleted during the read. Every response carries the
  live ``count``: if it grew, the top is read again; if it shrank, a run may have been skipped, so the
  whole pass is repeated.

A space with no remembered cursor (first load, or a space added since) and ``--full-scan`` read every page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .client import RunsPage, UnpodClient
from .records import ParsedPage, open_mask, parse_page

log = logging.getLogger(__name__)

TOP_IDS_KEPT = 50
MAX_PASSES = 3
MAX_RUNS_PER_REQUEST = 10_000  # the API has no maximum page size; a window of adjacent pages stays below this


@dataclass
class SpaceCursor:
    """The per-space incremental state kept in dlt's state (committed only with a successful load)."""

    count: int
    top_ids: list[str]
    newest_created: str | None
    open_runs: dict[str, list]  # run_id -> [rank, status, modified ISO or None]
    loaded_at: str

    def to_state(self) -> dict:
        return {
            "count": self.count,
            "top_ids": self.top_ids,
            "newest_created": self.newest_created,
            "open_runs": self.open_runs,
            "loaded_at": self.loaded_at,
        }

    @classmethod
    def from_state(cls, state: dict | None) -> "SpaceCursor | None":
        if not state:
            return None
        return cls(
            count=int(state["count"]),
            top_ids=list(state["top_ids"]),
            newest_created=state.get("newest_created"),
            open_runs=dict(state.get("open_runs") or {}),
            loaded_at=state.get("loaded_at", ""),
        )


@dataclass
class PageBatch:
    """What one request produced, handed to the dlt resources."""

    space_token: str
    page: int
    parsed: ParsedPage
    count: int = 0  # runs the space listed at the moment of this request
    served: int = 0  # items the server sent in this response (good, rejected and filtered alike)


@dataclass
class SpaceResult:
    space_token: str
    cursor: SpaceCursor
    full_pass: bool
    pages_read: int = 0
    runs_seen: int = 0
    changed_runs: int = 0
    rejected: int = 0


class SpaceReader:
    """Reads one space's runs with the incremental rule, emitting every page as it arrives."""

    def __init__(
        self,
        client: UnpodClient,
        space_token: str,
        cursor: SpaceCursor | None,
        page_size: int,
        full_scan: bool,
        emit: Callable[[PageBatch], None],
        now: Callable[[], datetime],
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.max_pages_per_request = max(1, MAX_RUNS_PER_REQUEST // page_size)
        self.client = client
        self.space_token = space_token
        self.cursor = cursor
        self.page_size = page_size
        self.full_pass = full_scan or cursor is None
        self.emit = emit
        self.now = now
        previous_open = cursor.open_runs if cursor else {}
        self.previous_open_ids = pa.array(list(previous_open), pa.string())
        self.previous_open_seen: dict[str, tuple] = {}  # run_id -> (status, modified) as read tonight
        self.open_now: dict[str, list] = {}  # run_id -> [rank, status, modified ISO]
        self.newest: datetime | None = _parse_iso(cursor.newest_created) if cursor else None
        self.counts: list[int] = []
        self.pages_read_this_pass: set[int] = set()
        self.top_ids: list[str] = []
        self.runs_read = 0
        self.rejected = 0
        self.pages_read = 0
        self.missing: list[str] = []

    def read(self) -> SpaceResult:
        for attempt in range(1, MAX_PASSES + 1):
            self.counts = []
            self.pages_read_this_pass = set()
            if self.full_pass:
                self._read_all_pages()
            else:
                self._read_top(
                    boundary_ids=set(self.cursor.top_ids) | set(self.cursor.open_runs),
                    newest=_parse_iso(self.cursor.newest_created),
                    known_count=self.cursor.count,
                )
                self._read_open_runs()
            if not self._count_shrank():
                break
            log.warning("event=drift space=%s pass=%d counts=%s action=reread", self.space_token, attempt, self.counts)
        for _ in range(MAX_PASSES):
            if not self._count_grew():
                break
            # Runs were created while paging: they sit above the first page read in this pass.
            previous_top = set(self.top_ids)
            self.counts = []
            self._read_top(boundary_ids=previous_top, newest=None, known_count=None)
        return self._result()

    def _fetch(self, page: int, page_size: int | None = None, only_open: bool = False) -> tuple[RunsPage, ParsedPage]:
        """One request; ``page_size`` may be a multiple of the configured one, to read adjacent pages at once.

        With ``only_open``, the page was read for the runs open at the last load: only those (and any run open
        now) go on to be loaded. Its other runs were terminal and loaded then, and terminal runs do not change.
        """
        page_size = page_size or self.page_size
        response = self.client.runs_page(self.space_token, page, page_size)
        self.pages_read += 1
        offset = (page - 1) * page_size
        first_page = offset // self.page_size + 1
        self.pages_read_this_pass.update(range(first_page, first_page + page_size // self.page_size))
        self.counts.append(response.count)
        parsed = parse_page(self.space_token, page, response.items, self.now())
        if parsed.table is not None:
            self._remember(parsed, response.count, offset)
        elif offset == 0:
            self.top_ids = []
        if only_open:
            parsed = _only_open(parsed, self.previous_open_ids)
        self.rejected += len(parsed.rejected)
        self.emit(PageBatch(self.space_token, page, parsed, response.count, len(response.items)))
        return response, parsed

    def _remember(self, parsed: ParsedPage, count: int, offset: int) -> None:
        """Keep what tomorrow's cursor needs, in bulk: only open runs become Python objects."""
        table = parsed.table
        self.runs_read += table.num_rows
        if offset == 0:
            self.top_ids = table["run_id"].slice(0, TOP_IDS_KEPT).to_pylist()
        newest = pc.max(table["created"]).as_py()
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest
        ranks = pc.subtract(count - 1 - offset, parsed.positions)
        is_open = open_mask(table)
        open_rows = table.filter(is_open).select(["run_id", "status", "modified"]).to_pydict()
        for run_id, status, modified, rank in zip(
            open_rows["run_id"], open_rows["status"], open_rows["modified"], ranks.filter(is_open).to_pylist()
        ):
            self.open_now[run_id] = [rank, status, modified.isoformat() if modified else None]
        if len(self.previous_open_ids):
            previous = table.filter(pc.is_in(table["run_id"], value_set=self.previous_open_ids))
            for run_id, status, modified in zip(*previous.select(["run_id", "status", "modified"]).to_pydict().values()):
                self.previous_open_seen[run_id] = (status, modified.isoformat() if modified else None)

    def _is_last_page(self, response: RunsPage) -> bool:
        return len(response.items) < self.page_size or response.page * self.page_size >= response.count

    def _read_all_pages(self) -> None:
        """Page 1 gives the count; the rest is read in windows of adjacent pages, then on to the end."""
        response, _ = self._fetch(1)
        if self._is_last_page(response):
            return
        last_page = -(-response.count // self.page_size)
        for page, pages in aligned_blocks(list(range(2, last_page + 1)), self.max_pages_per_request):
            response, _ = self._fetch(page, pages * self.page_size)
        # Runs created meanwhile pushed the oldest ones further down: follow them to the end of the list.
        page = last_page + 1
        while len(response.items) and (page - 1) * self.page_size < response.count:
            response, _ = self._fetch(page)
            page += 1

    def _read_top(self, boundary_ids: set[str], newest: datetime | None, known_count: int | None) -> None:
        """Read from page 1 down to the first page that holds a run known before.

        A remembered id on the page is proof. Failing that (all remembered ids deleted), a run created before
        the newest one seen is, once at least as many runs as the count grew by have been read: a run inserted
        with a backdated ``created`` cannot then end the scan early.
        """
        boundary = pa.array(sorted(boundary_ids), pa.string())
        page = 1
        read = 0
        while True:
            response, parsed = self._fetch(page)
            read += len(response.items)
            if parsed.table is not None:
                if pc.any(pc.is_in(parsed.table["run_id"], value_set=boundary)).as_py():
                    return
                if newest is not None and known_count is not None and read >= response.count - known_count:
                    created = parsed.table["created"]
                    if pc.any(pc.less(created, pa.scalar(newest, created.type))).as_py():
                        return
            if self._is_last_page(response):
                return
            page += 1

    def _read_open_runs(self) -> None:
        """Read only the pages where the runs open at the last load should now be."""
        pending = {run_id: info for run_id, info in self.cursor.open_runs.items() if run_id not in self.previous_open_seen}
        for spread in (0, -1, 1):
            if not pending:
                return
            count = self.counts[-1]
            wanted = {max(1, (count - 1 - int(rank)) // self.page_size + 1) + spread for rank, *_ in pending.values()}
            needed = sorted(page for page in wanted - self.pages_read_this_pass if 1 <= page and (page - 1) * self.page_size < count)
            for page, pages in aligned_blocks(needed, self.max_pages_per_request):
                self._fetch(page, pages * self.page_size, only_open=True)
            pending = {run_id: info for run_id, info in pending.items() if run_id not in self.previous_open_seen}
        if pending:
            self.missing = sorted(pending)
            log.warning(
                "event=open_runs_not_listed space=%s runs=%d note=%r",
                self.space_token,
                len(pending),
                "kept as last seen; the next --full-scan marks them deleted if the API no longer lists them",
            )

    def _count_shrank(self) -> bool:
        return any(later < earlier for earlier, later in zip(self.counts, self.counts[1:]))

    def _count_grew(self) -> bool:
        return bool(self.counts) and max(self.counts) > self.counts[0]

    def _result(self) -> SpaceResult:
        previous_open = self.cursor.open_runs if self.cursor else {}
        changed = sum(
            1 for run_id, (status, modified) in self.previous_open_seen.items()
            if (status, modified) != tuple(previous_open[run_id][1:3])
        )
        open_runs = dict(self.open_now)
        for run_id in self.missing:
            open_runs[run_id] = previous_open[run_id]
        cursor = SpaceCursor(
            count=self.counts[-1] if self.counts else 0,
            top_ids=self.top_ids,
            newest_created=self.newest.isoformat() if self.newest else None,
            open_runs=open_runs,
            loaded_at=self.now().isoformat(),
        )
        return SpaceResult(
            space_token=self.space_token,
            cursor=cursor,
            full_pass=self.full_pass,
            pages_read=self.pages_read,
            runs_seen=self.runs_read,
            changed_runs=changed,
            rejected=self.rejected,
        )


def aligned_blocks(pages: list[int], max_pages: int) -> list[tuple[int, int]]:
    """Cover sorted 1-based pages with few requests, reading no page that was not asked for.

    Offset paging can only read a window at an offset that is a multiple of its size, so a stretch of
    adjacent pages is split into the largest aligned windows, as (request page, pages per request):
    pages 3-8 become (2, 2), pages 3-4 read with a page twice the size, and (2, 4), pages 5-8.
    """
    blocks: list[tuple[int, int]] = []
    index = 0
    while index < len(pages):
        start = pages[index] - 1  # zero-based
        length = 1
        while index + length < len(pages) and pages[index + length] == pages[index] + length:
            length += 1
        index += length
        while length:
            size = min(length, max_pages)
            while start % size:
                size -= 1
            blocks.append((start // size + 1, size))
            start += size
            length -= size
    return blocks


def _only_open(parsed: ParsedPage, previous_open_ids: pa.Array) -> ParsedPage:
    if parsed.table is None:
        return ParsedPage(None, parsed.positions, [])
    keep = pc.or_(pc.is_in(parsed.table["run_id"], value_set=previous_open_ids), open_mask(parsed.table))
    table = parsed.table.filter(keep)
    return ParsedPage(table if table.num_rows else None, parsed.positions.filter(keep), [])


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
