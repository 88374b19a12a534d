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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from .client import RunsPage, UnpodClient
from .records import ParsedPage, RunEntry, parse_page

log = logging.getLogger(__name__)

TOP_IDS_KEPT = 50
MAX_PASSES = 3
MAX_PAGES_PER_REQUEST = 16


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


@dataclass
class SpaceResult:
    space_token: str
    cursor: SpaceCursor
    full_pass: bool
    pages_read: int = 0
    runs_seen: int = 0
    changed_runs: int = 0
    rejected: int = 0
    missing_open_runs: list[str] = field(default_factory=list)


@dataclass
class _Seen:
    rank: int
    entry: RunEntry


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
        self.client = client
        self.space_token = space_token
        self.cursor = cursor
        self.page_size = page_size
        self.full_pass = full_scan or cursor is None
        self.emit = emit
        self.now = now
        self.seen: dict[str, _Seen] = {}
        self.counts: list[int] = []
        self.pages_read_this_pass: set[int] = set()
        self.top_page: list[RunEntry] = []
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
            previous_top = {entry.run_id for entry in self.top_page}
            self.counts = []
            self._read_top(boundary_ids=previous_top, newest=None, known_count=None)
        return self._result()

    def _fetch(self, page: int, page_size: int | None = None) -> tuple[RunsPage, ParsedPage]:
        """One request; ``page_size`` may be a multiple of the configured one, to read adjacent pages at once."""
        page_size = page_size or self.page_size
        response = self.client.runs_page(self.space_token, page, page_size)
        self.pages_read += 1
        offset = (page - 1) * page_size
        first_page = offset // self.page_size + 1
        self.pages_read_this_pass.update(range(first_page, first_page + page_size // self.page_size))
        self.counts.append(response.count)
        parsed = parse_page(self.space_token, page, response.items, self.now())
        for entry in parsed.entries:
            rank = response.count - 1 - (offset + entry.position)
            self.seen[entry.run_id] = _Seen(rank, entry)
        if offset == 0:
            self.top_page = parsed.entries
        self.rejected += len(parsed.rejected)
        self.emit(PageBatch(self.space_token, page, parsed))
        return response, parsed

    def _is_last_page(self, response: RunsPage) -> bool:
        return len(response.items) < self.page_size or response.page * self.page_size >= response.count

    def _read_all_pages(self) -> None:
        page = 1
        while True:
            response, _ = self._fetch(page)
            if self._is_last_page(response):
                return
            page += 1

    def _read_top(self, boundary_ids: set[str], newest: datetime | None, known_count: int | None) -> None:
        """Read from page 1 down to the first page that holds a run known before.

        A remembered id on the page is proof. Failing that (all remembered ids deleted), a run created before
        the newest one seen is, once at least as many runs as the count grew by have been read: a run inserted
        with a backdated ``created`` cannot then end the scan early.
        """
        page = 1
        read = 0
        while True:
            response, parsed = self._fetch(page)
            read += len(response.items)
            expected_new = response.count - known_count if known_count is not None else None
            known = any(entry.run_id in boundary_ids for entry in parsed.entries) or (
                newest is not None
                and expected_new is not None
                and read >= expected_new
                and any(entry.created is not None and entry.created < newest for entry in parsed.entries)
            )
            if known or self._is_last_page(response):
                return
            page += 1

    def _read_open_runs(self) -> None:
        """Read only the pages where the runs open at the last load should now be."""
        pending = {run_id: info for run_id, info in self.cursor.open_runs.items() if run_id not in self.seen}
        for spread in (0, -1, 1):
            if not pending:
                return
            count = self.counts[-1]
            wanted: dict[int, list[str]] = {}
            for run_id, info in pending.items():
                page = max(1, (count - 1 - int(info[0])) // self.page_size + 1) + spread
                if page >= 1 and (page - 1) * self.page_size < max(count, 1):
                    wanted.setdefault(page, []).append(run_id)
            for page, pages in aligned_blocks(sorted(set(wanted) - self.pages_read_this_pass), MAX_PAGES_PER_REQUEST):
                self._fetch(page, pages * self.page_size)
            pending = {run_id: info for run_id, info in pending.items() if run_id not in self.seen}
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
        open_runs: dict[str, list] = {}
        changed = 0
        newest = _parse_iso(self.cursor.newest_created) if self.cursor else None
        for run_id, seen in self.seen.items():
            entry = seen.entry
            modified = entry.modified.isoformat() if entry.modified else None
            before = previous_open.get(run_id)
            if before is not None and (before[1] != entry.status or before[2] != modified):
                changed += 1
            if entry.is_open:
                open_runs[run_id] = [seen.rank, entry.status, modified]
            if entry.created is not None and (newest is None or entry.created > newest):
                newest = entry.created
        for run_id in self.missing:
            if not self.full_pass:
                open_runs[run_id] = previous_open[run_id]
        cursor = SpaceCursor(
            count=self.counts[-1] if self.counts else 0,
            top_ids=[entry.run_id for entry in self.top_page[:TOP_IDS_KEPT]],
            newest_created=newest.isoformat() if newest else None,
            open_runs=open_runs,
            loaded_at=self.now().isoformat(),
        )
        return SpaceResult(
            space_token=self.space_token,
            cursor=cursor,
            full_pass=self.full_pass,
            pages_read=self.pages_read,
            runs_seen=len(self.seen),
            changed_runs=changed,
            rejected=self.rejected,
            missing_open_runs=self.missing,
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


def _parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
