"""The incremental rule without HTTP: the planner's pure functions, and the space reader against a sandbox world in
memory, fuzzed over many seeds with inserts, deletions and drift while paging."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone

import orjson
import pyarrow as pa
import pytest

from unpod_runs.api.client import RunsPage
from unpod_runs.pipeline.incremental import SpaceCursor, SpaceReader, empty_open_runs
from unpod_runs.pipeline.planner import (
    Window,
    aligned_blocks,
    cover,
    merged_ranges,
    next_top_windows,
    plan_windows,
    served,
    shift_brackets,
    where_it_can_be,
)
from unpod_runs.sandbox.world import TERMINAL_STATUSES, World

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)


def test_cover_reads_the_stretch_with_at_most_two_windows_under_twice_its_length():
    rng = random.Random(1)
    for _ in range(20_000):
        start = rng.randrange(0, 10 ** rng.randint(1, 6))
        length = rng.randint(1, 10 ** rng.randint(0, 4))
        windows = cover(start, start + length)
        assert 1 <= len(windows) <= 2
        assert windows[0].start <= start and windows[-1].stop >= start + length
        if len(windows) == 2:
            assert windows[0].stop == windows[1].start
        assert served(windows) < 2 * length or served(windows) == length == 1


def test_window_offsets_are_page_minus_one_times_size():
    assert Window(3, 7).start == 14 and Window(3, 7).stop == 21
    assert cover(0, 13) == [Window(1, 13)]
    assert cover(5, 6) == [Window(6, 1)]


def test_plan_windows_reads_every_position_within_its_budget_and_joins_cheap_gaps():
    rng = random.Random(2)
    for _ in range(500):
        points = sorted(rng.sample(range(100_000), rng.randint(1, 300)))
        request_cost = rng.choice([0, 10, 200, 5_000])
        windows = plan_windows([(point, point + 1) for point in points], request_cost, 2 * len(points))
        assert served(windows) <= 2 * len(points)
        for point in points:
            assert any(window.start <= point < window.stop for window in windows), point
    # Ten runs one apart: with requests dear, one request; with requests free, ten.
    dense = [(index * 2, index * 2 + 1) for index in range(10)]
    assert len(plan_windows(dense, 1_000, 40)) == 1
    assert len(plan_windows(dense, 0, 40)) == 10


def test_plan_windows_caps_a_long_stretch():
    windows = plan_windows([(123, 45_678)], 0, 10**9, max_window=10_000)
    assert all(window.page_size <= 10_000 for window in windows)
    covered = sorted((window.start, window.stop) for window in windows)
    assert covered[0][0] <= 123 and covered[-1][1] >= 45_678
    assert all(left[1] >= right[0] for left, right in zip(covered, covered[1:]))


def test_top_of_list_grows_at_least_geometrically():
    read, requests = 50, 1
    while read < 5_000:
        windows = next_top_windows(read, 0)
        assert windows[0].start <= read
        read, requests = max(window.stop for window in windows), requests + len(windows)
    assert requests <= 2 * 7


def test_aligned_blocks_cover_exactly_the_pages_asked_for():
    rng = random.Random(4)
    for _ in range(300):
        wanted = sorted(rng.sample(range(1, 200), rng.randint(1, 60)))
        covered = []
        for page, pages_per_request in aligned_blocks(wanted, 16):
            assert pages_per_request <= 16
            first = (page - 1) * pages_per_request + 1
            covered.extend(range(first, first + pages_per_request))
        assert covered == wanted
    assert len(aligned_blocks(list(range(2, 34)), 16)) <= 6


def test_shift_brackets_come_from_the_runs_found_around_each_one():
    import numpy as np

    # Ranks 10..50; two runs deleted between ranks 20 and 30 (the counts allow three deletions in all).
    ranks = np.array([10, 20, 30, 40, 50])
    found = np.array([10, -1, -1, 38, -1])  # the oldest did not move, the one at 40 moved by 2
    low, high = shift_brackets(ranks, found, np.zeros(5, np.int64), deleted_bound=3)
    assert low.tolist() == [0, 0, 0, 2, 2]
    assert high.tolist() == [0, 2, 2, 2, 3]
    # A run not found where it should have been last time carries slack: its bracket is that much wider.
    low, high = shift_brackets(ranks, np.full(5, -1), np.array([0, 0, 4, 0, 0]), deleted_bound=1)
    assert high.tolist() == [1, 1, 5, 1, 1]


def test_where_it_can_be_is_its_bracket_less_what_was_read():
    # Rank 60 at count 100 stands at offset 39; with a shift of up to 3, offsets 39..42.
    assert where_it_can_be(60, 0, 3, 100, []) == [(39, 43)]
    # Ranks 58 and 59 were read already (offsets 40, 41): what is left is 39 and 42.
    assert sorted(where_it_can_be(60, 0, 3, 100, merged_ranges([(59, 59), (58, 58)]))) == [(39, 40), (42, 43)]
    assert where_it_can_be(60, 0, 3, 100, merged_ranges([(50, 70)])) == []
    assert merged_ranges([(5, 6), (1, 2), (3, 3), (9, 9)]) == [(1, 3), (5, 6), (9, 9)]


class MemoryClient:
    """The sandbox world's paging, in memory, with a hook that changes the world between two requests (drift)."""

    def __init__(self, world: World, between_requests=None):
        self.world = world
        self.between_requests = between_requests
        self.requests = 0
        self.served = 0
        self.lock = threading.Lock()

    def runs_page(self, space_token: str, page: int, page_size: int) -> RunsPage:
        with self.lock:  # the reader sends a few requests at once
            if self.between_requests is not None and self.requests:
                self.between_requests(self.requests)
            self.requests += 1
        count, body = self.world.runs_page(space_token, (page - 1) * page_size, page_size)
        items = orjson.loads(body)
        with self.lock:
            self.served += len(items)
        return RunsPage(space_token, page, page_size, count, items)


class Destination:
    """What the loader would hold: runs by id (latest write wins) and the reader's state for the next night."""

    def __init__(self):
        self.runs: dict[str, dict] = {}
        self.cursor: SpaceCursor | None = None
        self.open_runs: pa.Table = empty_open_runs()

    def night(self, client: MemoryClient, token: str, page_size: int, request_cost: int = 200,
              full_scan: bool = False):
        batches = []
        reader = SpaceReader(client, token, self.cursor, self.open_runs, page_size, full_scan, batches.append,
                             now=lambda: NOW, request_cost=request_cost)
        result = reader.read()
        for batch in batches:
            if batch.parsed.table is not None:
                for row in batch.parsed.table.to_pylist():
                    self.runs[row["run_id"]] = row
        self.cursor = result.cursor
        changes = result.cursor_changes
        stored = {row["run_id"]: row for row in self.open_runs.to_pylist()}
        for row in changes.to_pylist():
            if row["closed"]:
                stored.pop(row["run_id"], None)
            else:
                stored[row["run_id"]] = {key: row[key] for key in ("run_id", "rank", "status", "modified", "slack")}
        self.open_runs = pa.Table.from_pylist(list(stored.values()), schema=empty_open_runs().schema)
        assert sorted(self.open_runs["run_id"].to_pylist()) == sorted(result.open_runs["run_id"].to_pylist())
        return result


def assert_exact(destination: Destination, world: World, token: str, context) -> None:
    truth = {run["run_id"]: run for run in world.runs(token)}
    missing = set(truth) - set(destination.runs)
    assert not missing, (context, "missing", sorted(missing)[:3])
    for run_id, run in truth.items():
        assert destination.runs[run_id]["status"] == run["status"], (context, run_id)
    open_truth = {run_id for run_id, run in truth.items() if run["status"] not in TERMINAL_STATUSES}
    assert set(destination.open_runs["run_id"].to_pylist()) >= open_truth, context


def _open_ids(world: World, token: str) -> list[str]:
    return [run["run_id"] for run in world.runs(token) if run["status"] not in TERMINAL_STATUSES]


@pytest.mark.parametrize("seed", range(200))
def test_fuzz_nights_with_inserts_deletions_and_drift_stay_exact(seed: int):
    rng = random.Random(seed)
    world = World(seed=seed, runs=[rng.randint(0, 250)], spaces=1, open_fraction=rng.choice([0.02, 0.1, 0.3]))
    token = world.space_tokens()[0]
    page_size = rng.choice([1, 3, 10, 50, 1000])
    destination = Destination()
    destination.night(MemoryClient(world), token, page_size)
    assert_exact(destination, world, token, (seed, "night 1"))
    for night in range(2, 6):
        listing = world.runs(token)
        listed_before = len(listing)
        floor_before = len(_open_ids(world, token))
        # A run not found where the counts said, after changes while paging, is looked for wider (its slack).
        ranks_exact = not any(destination.open_runs["slack"].to_pylist())
        for _ in range(rng.randint(0, 3)):
            if listing and rng.random() < 0.5:
                world.delete_run(rng.choice(listing)["run_id"])
                listing = world.runs(token)
        for run_id in rng.sample(_open_ids(world, token), min(len(_open_ids(world, token)), rng.randint(0, 5))):
            world.set_status(run_id, rng.choice(["completed", "failed", "in_progress"]), bump_modified=rng.random() < 0.5)
        created = world.add_runs(token, n=rng.choice([0, 0, 1, 5, 60]))
        deleted_tonight = listed_before + len(created) - len(world.runs(token))
        drift = rng.random() < 0.3

        def between(request: int) -> None:
            # One kind of change between two requests, so the live count shows it (a creation and a deletion in the
            # same gap leave the count as it was: no reader of this API can see that, and the full scan reconciles).
            draw = rng.random()
            if draw < 0.3:
                world.add_runs(token, n=rng.randint(1, 3))
            elif draw < 0.4 and world.runs(token):
                world.delete_run(rng.choice(world.runs(token))["run_id"])

        client = MemoryClient(world, between if drift else None)
        destination.night(client, token, page_size, request_cost=rng.choice([0, 50, 200]))
        if drift:
            # A run created after the space's last request waits for the next night; nothing else may be missed.
            destination.night(MemoryClient(world), token, page_size)
        assert_exact(destination, world, token, (seed, night, page_size, drift))
        if not drift and not deleted_tonight and ranks_exact:
            floor = floor_before + len(created)
            assert client.served <= 2 * floor + 50, (seed, night, client.served, floor)  # SPEC: "Guarantees"


def test_quiet_night_with_old_stuck_runs_is_served_near_its_floor():
    world = World(seed=3, spaces=1, runs=[100_000], open_fraction=0.01)
    token = world.space_tokens()[0]
    destination = Destination()
    destination.night(MemoryClient(world), token, page_size=1000)
    open_before = len(_open_ids(world, token))
    world.advance(hours=24, new_runs=200, finish_fraction=0.2, seed=1)
    client = MemoryClient(world)
    destination.night(client, token, page_size=1000)
    assert_exact(destination, world, token, "quiet night")
    floor = open_before + 200
    assert client.served <= 2 * (floor + 50)
    assert client.requests < open_before
