"""Which requests read a set of list positions at the least cost: pure functions, no I/O.

The API pages by offset, ``offset = (page - 1) * page_size``, and takes any ``page_size`` on every request. So a
request reads a *window* ``[(page - 1) * size, page * size)``: any length, but only at an offset that is a multiple of
that length. The planner covers the positions a night must read with such windows and chooses them by an explicit
cost model: a request costs as much as serving ``request_cost`` runs (its round trip, headers, parsing), and never
serves more than a budget of runs in all.

Positions here are 0-based offsets from the top of the list (newest first) at one moment's ``count``; a *rank* is how
many runs are older than a run (``offset = count - 1 - rank``), which runs created at the top never change.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, order=True)
class Window:
    """One request: ``page`` (1-based) of ``page_size`` runs, reading offsets ``[start, stop)``."""

    page: int
    page_size: int

    @property
    def start(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def stop(self) -> int:
        return self.page * self.page_size


def window_at(start: int, size: int) -> Window:
    """The window of ``size`` runs that starts at ``start``, which must be a multiple of ``size``."""
    if size < 1 or start % size:
        raise ValueError(f"no window of {size} runs starts at offset {start}")
    return Window(start // size + 1, size)


def cover(start: int, stop: int) -> list[Window]:
    """At most two windows that together read offsets ``[start, stop)``, serving fewer than twice its length.

    One window if one of fewer than twice the length fits. Otherwise split at ``m``, the one multiple of the largest
    power of two inside the stretch: each side is then no longer than that power, so a power-of-two window ending (or
    starting) at ``m`` covers it, and each such window is less than twice the side it covers.
    """
    length = stop - start
    if length < 1:
        return []
    single = _smallest_single_window(start, stop)
    if single is not None:
        return [single]
    power = 1 << (stop - 1).bit_length()
    while power > 1 and (stop - 1) // power * power <= start:
        power >>= 1
    split = (stop - 1) // power * power
    left = 1 << (split - start - 1).bit_length()
    right = 1 << (stop - split - 1).bit_length()
    return [window_at(split - left, left), window_at(split, right)]


def _smallest_single_window(start: int, stop: int) -> Window | None:
    """The smallest window of fewer than ``2 * (stop - start)`` runs holding ``[start, stop)``, if there is one.

    A window of ``size`` runs holds the stretch when no multiple of ``size`` falls inside it. Either the sizes or the
    window indexes ``k = start // size`` are few; the loop walks whichever is shorter.
    """
    length = stop - start
    if stop < 2 * length:
        return Window(1, stop)
    if length <= start // (2 * length) + 1:
        for size in range(length, 2 * length):
            if start // size == (stop - 1) // size:
                return window_at(start // size * size, size)
        return None
    for k in range(start // length, start // (2 * length) - 1, -1):
        size = max(length, -(-stop // (k + 1)))
        if k >= 1 and size < 2 * length and k * size <= start:
            return window_at(k * size, size)
    return None


def served(windows: list[Window]) -> int:
    return sum(window.page_size for window in windows)


def segments(positions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge ``[start, stop)`` ranges that overlap or touch into disjoint, sorted segments."""
    merged: list[list[int]] = []
    for start, stop in sorted(positions):
        if stop <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(start, stop) for start, stop in merged]


def plan_windows(needed: list[tuple[int, int]], request_cost: int, budget: int,
                 max_window: int | None = None) -> list[Window]:
    """Windows that read every needed ``[start, stop)`` range, trading requests against runs served.

    Start from the cheapest exact cover of each segment, then join neighbouring groups, smallest gap first, where the
    join saves cost (runs served + ``request_cost`` per request) and the whole plan stays within ``budget`` runs
    served (if even the exact cover exceeds it, the exact cover is returned: what must be read is read).
    ``max_window`` caps one request's size, for a response of a sensible size.
    """
    parts = segments(needed)
    starts = [start for start, _ in parts]
    stops = [stop for _, stop in parts]
    plans = [_cover_capped(start, stop, max_window) for start, stop in parts]
    # Groups are runs of adjacent segments; each is known by its first segment, and `right_of` links them in order.
    right_of = list(range(1, len(parts) + 1))
    left_of = list(range(-1, len(parts) - 1))
    alive = [True] * len(parts)
    total = sum(served(windows) for windows in plans)

    def cost(windows: list[Window]) -> int:
        return served(windows) + request_cost * len(windows)

    for gap, index in sorted((starts[index + 1] - stops[index], index) for index in range(len(parts) - 1)):
        if gap > request_cost:
            break  # every later gap is wider: reading it costs more than the request it saves
        left = index
        while not alive[left]:
            left = left_of[left]
        right = right_of[left]
        joined = _cover_capped(starts[left], stops[right], max_window)
        extra = served(joined) - served(plans[left]) - served(plans[right])
        if cost(joined) < cost(plans[left]) + cost(plans[right]) and total + extra <= budget:
            plans[left], stops[left], total = joined, stops[right], total + extra
            alive[right] = False
            right_of[left] = right_of[right]
            if right_of[right] < len(parts):
                left_of[right_of[right]] = left
    return sorted(window for index, windows in enumerate(plans) if alive[index] for window in windows)


def _cover_capped(start: int, stop: int, max_window: int | None) -> list[Window]:
    """``cover``, with a long stretch first cut into aligned pieces of at most ``max_window`` runs."""
    if max_window is None or stop - start <= max_window:
        return cover(start, stop)
    windows: list[Window] = []
    first_aligned = -(-start // max_window) * max_window
    windows += cover(start, min(first_aligned, stop))
    offset = first_aligned
    while offset + max_window <= stop:
        windows.append(window_at(offset, max_window))
        offset += max_window
    windows += cover(max(offset, start), stop) if offset < stop else []
    return windows


def next_top_windows(read_until: int, wanted_until: int) -> list[Window]:
    """The next request(s) down the top of the list, having read ``[0, read_until)`` and wanting ``wanted_until``.

    Reading the top grows geometrically (at least doubling what was read) while everything on it is new, so a night
    with many new runs costs a few requests and at most about twice the runs it had to read.
    """
    target = max(wanted_until, 2 * read_until)
    return cover(read_until, target)


def aligned_blocks(pages: list[int], max_pages: int) -> list[tuple[int, int]]:
    """Cover sorted 1-based pages of one size with few requests, reading no page that was not asked for.

    A full read walks the list in pages of the configured size; a stretch of adjacent pages is split into the
    largest aligned windows, as (request page, pages per request): pages 3-8 become (2, 2), pages 3-4 read with a
    page twice the size, and (2, 4), pages 5-8.
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


def shift_brackets(ranks: np.ndarray, found_ranks: np.ndarray, slack: np.ndarray,
                   deleted_bound: int) -> tuple[np.ndarray, np.ndarray]:
    """How far deletions can have lowered each remembered rank tonight: per run, the shift's [low, high].

    ``ranks`` are the ranks remembered (sorted ascending), ``found_ranks`` tonight's where a run was found (-1
    elsewhere), ``slack`` how much further than the counts a run may have moved. Deleting an older run lowers a rank
    by one, so a run's shift is at least that of any older run found and at most that of any newer one, and never more
    than the ``deleted_bound`` the counts allow (plus its own slack).
    """
    if not len(ranks):
        return ranks.copy(), ranks.copy()
    known = found_ranks >= 0
    shift = np.where(known, ranks - found_ranks, 0)
    low = np.clip(np.maximum.accumulate(shift), 0, deleted_bound)
    high = np.minimum.accumulate(np.where(known, shift, deleted_bound)[::-1])[::-1]
    high = np.clip(np.maximum(high, low), 0, deleted_bound) + np.where(known, 0, slack)
    return low, high


def where_it_can_be(rank: int, low: int, high: int, count: int,
                    covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Offsets ``[start, stop)``, at ``count``, where a run of remembered ``rank`` can be with a shift in [low, high],
    less the ranks already read (``covered``: sorted, disjoint, inclusive rank ranges)."""
    rank_high = min(rank - low, count - 1)
    rank_low = max(0, rank - high)
    if rank_high < rank_low:
        return []
    return [(count - 1 - high_, count - low_) for low_, high_ in _uncovered(rank_low, rank_high, covered)]


def merged_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges merged into sorted, disjoint ones."""
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]


def _uncovered(low: int, high: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the inclusive range [low, high] outside the sorted, disjoint ``covered`` ranges."""
    pieces = []
    index = bisect.bisect_right(covered, (low, float("inf"))) - 1
    index = max(index, 0)
    while index < len(covered) and covered[index][0] <= high:
        cut_low, cut_high = covered[index]
        if cut_high >= low:
            if cut_low > low:
                pieces.append((low, cut_low - 1))
            low = cut_high + 1
            if low > high:
                return pieces
        index += 1
    pieces.append((low, high))
    return pieces
