"""A deterministic Unpod organization: the ground truth the sandbox serves and the tests compare against.

Pure data: no I/O and no clock. Everything random comes from `random.Random` instances seeded from the world's
seed, so one seed gives the same spaces, runs, ids and nights on every machine. Runs are kept in insertion order
(oldest first) and served newest first, like the real API, with each run's JSON cached because the benchmark serves
a million of them.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import orjson

from unpod_runs.statuses import OPEN_STATUSES, TERMINAL_STATUSES  # what the API sends; the sandbox speaks it too

RUN_MODES = ("prefect", "default", "dev", "prod", "test")

FULL_FIELDS = ("space_id", "user", "thread_id", "run_id", "collection_ref", "run_mode", "status", "batch_count",
               "created", "modified")
SIX_FIELDS = ("run_id", "collection_ref", "run_mode", "status", "created", "modified")
SHAPES = {"full": FULL_FIELDS, "six": SIX_FIELDS}

DEFAULT_NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
HISTORY_DAYS = 90
RECENT_DAYS = 2
# Beyond this age a run counts as old: it is open only if stuck.
STALE_DAYS = 14
# Share of a world's open runs that are old and stuck (hold/pending) rather than recent.
STUCK_SHARE = 0.2
# Even among the newest runs most finish quickly, so at most this share of them is open.
RECENT_OPEN_CAP = 0.7
MAX_DURATION_S = 6 * 3600

_MODE_WEIGHTS = (15, 20, 15, 40, 10)
_TERMINAL_WEIGHTS = (82, 12, 6)
_RECENT_OPEN_WEIGHTS = (20, 15, 35, 10, 20)
_WORKING_STATUSES = ("in_progress", "running")
_STUCK_STATUSES = ("hold", "pending", "scheduled")
_STUCK_WEIGHTS = (50, 35, 15)
_BATCH_COUNTS = (1, 2, 3, 5, 10, 25, 100)
_BATCH_WEIGHTS = (75, 8, 5, 5, 4, 2, 1)

_SPACE_NAMES = ("Sales Calls", "Support Line", "Lead Qualification", "Recruiting Screens", "Customer Success",
                "Payment Reminders", "Onboarding", "Renewals", "Surveys", "Appointment Booking", "Collections",
                "Partner Outreach")
_CONTENT_TYPES = ("contact", "email", "document", "general", "table")
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Offset between the UUID epoch (1582-10-15) and the Unix epoch, in 100 ns ticks.
_UUID_EPOCH_TICKS = 0x01B21DD213814000


def derive_api_token(seed: int) -> str:
    """The sandbox's own fake API token for a seed: 40 hex characters, like a real Unpod key."""
    return hashlib.sha1(f"unpod-sandbox/{seed}".encode()).hexdigest()


@functools.cache
def _clock_tails() -> tuple[str, ...]:
    return tuple(f"{minute:02d}:{second:02d}" for minute in range(60) for second in range(60))


@functools.lru_cache(maxsize=65536)
def _hour_prefix(hour_number: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(hours=hour_number)).strftime("%Y-%m-%dT%H:")


def format_timestamp(epoch: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` in UTC, the API's format; from cached pieces, as strftime dominates a million-run build."""
    return _hour_prefix(epoch // 3600) + _clock_tails()[epoch % 3600]


@functools.cache
def _terminal_durations() -> tuple[int, ...]:
    """Quantiles of a terminal run's duration in seconds: 12% finish within their creation second (the docs show
    created == modified), the rest log-normal around a minute and a half, capped at six hours."""
    zeros = 120
    spread = NormalDist(4.5, 1.6)
    durations = [min(MAX_DURATION_S, max(1, int(math.exp(spread.inv_cdf((i + 0.5) / (1000 - zeros))))))
                 for i in range(1000 - zeros)]
    return (0,) * zeros + tuple(durations)


def _epoch(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return math.floor(value.timestamp())


def _parse_epoch(text: object) -> int | None:
    """Epoch seconds of an API timestamp, or None when it does not parse (raw test items may hold anything)."""
    try:
        return _epoch(datetime.fromisoformat(str(text)))
    except ValueError:
        return None


class _Space:
    """A space and its items. Items are plain dicts (oldest first), not wrapper objects: a million small objects
    would make the cyclic garbage collector rescan them during the build and double its time."""

    def __init__(self, token: str, space_id: str, fields: dict, users: list[str], collections: list[str],
                 node: int):
        self.token = token
        self.space_id = space_id
        self.fields = fields
        self.active = True
        self.shape = "full"
        self.items: list[dict] = []
        self.by_id: dict[str, dict] = {}
        # Served JSON per item, keyed by id(item): raw items may lack a run_id or repeat one. An entry is dropped
        # whenever its item changes or leaves, so a key never outlives its item.
        self.blobs: dict[int, bytes] = {}
        self.raw: set[int] = set()
        self.users = users
        self.collections = collections
        self.node_hex = f"{node:012x}"
        self.newest_epoch = 0

    def served(self, item: dict) -> dict:
        """A copy of an item as the API serves it: raw items as given, runs cut to the space's shape."""
        if id(item) in self.raw:
            return copy.deepcopy(item)
        return {field: item[field] for field in SHAPES[self.shape]}

    def blob(self, item: dict) -> bytes:
        blob = self.blobs.get(id(item))
        if blob is None:
            shaped = item if self.shape == "full" or id(item) in self.raw else self.served(item)
            # orjson's result keeps a 4 KiB buffer; an exact-size copy saves ~4 GB at a million runs.
            blob = self.blobs[id(item)] = bytes(memoryview(orjson.dumps(shaped)))
        return blob

    def changed(self, item: dict) -> None:
        self.blobs.pop(id(item), None)


class World:
    """An organization with spaces and runs, changed only through its methods.

    Thread-safe: the sandbox server reads it from many threads while a test changes it.
    """

    def __init__(self, seed: int = 0, spaces: int = 3, runs: int | list[int] = 100, org_handle: str = "acme",
                 api_token: str | None = None, now: datetime | None = None, open_fraction: float = 0.05,
                 skew: bool = False, stuck_share: float = STUCK_SHARE):
        """`runs` as an int is spread over `spaces` (Zipf-like sizes when `skew`); as a list it gives each space's
        size exactly and then `spaces` is its length. `api_token` defaults to one derived from the seed.
        `stuck_share` of the open runs are old and stuck, spread over the whole history."""
        self.seed = seed
        self.org_handle = org_handle
        self.api_token = api_token if api_token is not None else derive_api_token(seed)
        self.revoked_tokens: set[str] = set()
        self.open_fraction = open_fraction
        self.stuck_share = stuck_share
        self.now = now or DEFAULT_NOW
        self.lock = threading.RLock()
        self._rng_uses = 0
        self._spaces: dict[str, _Space] = {}
        # run_id -> epoch of the moment an open run became terminal, bumped or not. Runs born terminal are absent:
        # their `modified` is their finish.
        self._finished: dict[str, int] = {}
        rng = self._rng("org")
        self._org_users = [str(user) for user in rng.sample(range(2, 500), 12)]
        self._last_space_id = rng.randrange(100, 400)
        sizes = list(runs) if isinstance(runs, list) else _split(runs, spaces, skew)
        for size in sizes:
            self._create_space(size, self._now_epoch - HISTORY_DAYS * 86400, self._now_epoch)

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now_epoch, UTC)

    @now.setter
    def now(self, value: datetime) -> None:
        self._now_epoch = _epoch(value)

    # Reading

    def space_tokens(self) -> list[str]:
        """Active spaces, newest first: the order the API lists them."""
        with self.lock:
            return [s.token for s in reversed(self._spaces.values()) if s.active]

    def has_space(self, token: str) -> bool:
        """Whether the API knows this space token: an active space."""
        with self.lock:
            space = self._spaces.get(token)
            return space is not None and space.active

    def space(self, token: str) -> dict:
        """The API's fields of an active space; KeyError for an unknown or removed one."""
        with self.lock:
            return copy.deepcopy(self._active(token).fields)

    def runs(self, token: str) -> list[dict]:
        """A space's runs exactly as the API serves them, newest created first."""
        with self.lock:
            space = self._active(token)
            return [space.served(item) for item in reversed(space.items)]

    def truth(self) -> dict[str, dict]:
        """run_id -> run as served plus its "space_token", over every active space. Items without a string run_id
        (malformed test items) have no identity and are left out."""
        with self.lock:
            truth = {}
            for space in self._spaces.values():
                if space.active:
                    for item in space.items:
                        run_id = item.get("run_id")
                        if isinstance(run_id, str):
                            truth[run_id] = {**space.served(item), "space_token": space.token}
            return truth

    def states(self) -> dict[str, list]:
        """The truth in columns: "space_token", "run_id", "status", "created", "modified" of the runs truth() holds,
        oldest first per space. Unlike truth() it copies no run, so it stays cheap at millions of runs."""
        with self.lock:
            columns: dict[str, list] = {"space_token": [], "run_id": [], "status": [], "created": [], "modified": []}
            for space in self._spaces.values():
                if not space.active:
                    continue
                items = [item for item in space.items if isinstance(item.get("run_id"), str)]
                columns["space_token"] += [space.token] * len(items)
                for name in ("run_id", "status", "created", "modified"):
                    columns[name] += [item.get(name) for item in items]
            return columns

    def finishes(self) -> dict[str, datetime]:
        """run_id -> the true moment each terminal run of an active space finished: what no client is told when
        the API does not bump `modified`. A run born terminal finished at its `modified`."""
        with self.lock:
            finishes = {}
            for space in self._spaces.values():
                if not space.active:
                    continue
                for item in space.items:
                    run_id = item.get("run_id")
                    if isinstance(run_id, str) and item.get("status") in TERMINAL_STATUSES:
                        epoch = self._finished.get(run_id, _parse_epoch(item.get("modified")))
                        if epoch is not None:
                            finishes[run_id] = datetime.fromtimestamp(epoch, UTC)
            return finishes

    def runs_page(self, token: str, skip: int, limit: int) -> tuple[int, bytes]:
        """(runs in the space, JSON array of `limit` runs after skipping `skip`, newest first); limit 0 means all.

        Joins cached per-run JSON so a page of thousands costs a join, not a serialization."""
        with self.lock:
            space = self._active(token)
            items = space.items
            count = len(items)
            stop = count - skip
            chunk = items[0 if limit == 0 else max(0, stop - limit):stop] if stop > 0 else []
            return count, b"[" + b",".join([space.blob(item) for item in reversed(chunk)]) + b"]"

    def tasks(self, token: str, run_id: str) -> list[dict]:
        """Plausible tasks of a run (one per batch item), derived from the run id; [] for a run not in the space."""
        with self.lock:
            item = self._active(token).by_id.get(run_id)
            if item is None:
                return []
            run = dict(item)
        rng = random.Random(run_id)
        count = run.get("batch_count")
        status = run.get("status")
        tasks = []
        for _ in range(count if isinstance(count, int) and 0 < count <= 1000 else 1):
            task_status = rng.choices(("completed", "failed"), (9, 1))[0] if status in TERMINAL_STATUSES else status
            tasks.append({
                "task_id": f"T{rng.getrandbits(128):032x}",
                "run_id": run_id,
                "thread_id": run.get("thread_id"),
                "collection_ref": run.get("collection_ref"),
                "status": task_status,
                "input": {"contact_number": f"+1555{rng.randrange(10**7):07d}"},
                "output": {"call_duration": rng.randrange(5, 900)} if task_status == "completed" else {},
                "created": run.get("created"),
                "modified": run.get("modified"),
            })
        return tasks

    # Changing

    def add_space(self, runs: int = 10, token: str | None = None, age_days: float = 60, shape: str = "full") -> str:
        """A new (newest) space whose runs span the month ending `age_days` ago: older, perhaps, than anything a
        pipeline has loaded before. Returns its token."""
        _check_shape(shape)
        with self.lock:
            if token in self._spaces:
                raise ValueError(f"space {token} already exists")
            end = self._now_epoch - int(age_days * 86400)
            space = self._create_space(runs, end - 30 * 86400, end, token)
            space.shape = shape
            return space.token

    def remove_space(self, token: str) -> None:
        """The space becomes inactive: unlisted, and its endpoints answer 206 Invalid Space Token."""
        with self.lock:
            self._active(token).active = False

    def add_runs(self, token: str, n: int = 1, status: str | None = None,
                 created: datetime | None = None) -> list[str]:
        """`n` new runs at the top of a space, created at `created` (default: now), `pending` unless told, with
        modified == created. Returns their ids, oldest first."""
        with self.lock:
            space = self._active(token)
            epoch = self._now_epoch if created is None else _epoch(created)
            if epoch < space.newest_epoch:
                raise ValueError(f"created {format_timestamp(epoch)} is older than the newest run of {token}: "
                                 "the API inserts runs in created order")
            return self._generate(space, [epoch] * n, self._rng("add_runs"), status=status or "pending")

    def add_raw_run(self, token: str, item: dict) -> str | None:
        """Insert an arbitrary, possibly malformed item at the top of a space, served exactly as given.

        Returns its run_id if it has a string one (then set_status and delete_run reach it)."""
        with self.lock:
            space = self._active(token)
            item = copy.deepcopy(item)
            space.items.append(item)
            space.raw.add(id(item))
            run_id = item.get("run_id")
            if isinstance(run_id, str):
                space.by_id[run_id] = item
                return run_id
            return None

    def set_status(self, run_id: str, status: str, bump_modified: bool = True) -> None:
        """Change a run's status. A bump moves `modified` to now, and at least a second past its old value so the
        change is visible; without one `modified` stays, as the real API sometimes does."""
        with self.lock:
            space, item = self._find(run_id)
            was_open = item.get("status") not in TERMINAL_STATUSES
            item["status"] = status
            finished = self._now_epoch
            if bump_modified:
                previous = _parse_epoch(item.get("modified"))
                finished = self._now_epoch if previous is None else max(self._now_epoch, previous + 1)
                item["modified"] = format_timestamp(finished)
            if status not in TERMINAL_STATUSES:
                self._finished.pop(run_id, None)
            elif was_open:
                self._finished[run_id] = finished
            space.changed(item)

    def delete_run(self, run_id: str) -> None:
        with self.lock:
            space, item = self._find(run_id)
            del space.by_id[run_id]
            self._finished.pop(run_id, None)
            # By identity, from the top where tests delete: equal raw duplicates must not be confused.
            position = next(i for i in range(len(space.items) - 1, -1, -1) if space.items[i] is item)
            del space.items[position]
            space.changed(item)
            space.raw.discard(id(item))

    def set_shape(self, token: str, shape: str) -> None:
        """"full" serves the ten documented fields, "six" only the six the current docs show."""
        _check_shape(shape)
        with self.lock:
            space = self._active(token)
            space.shape = shape
            space.blobs.clear()

    def advance(self, hours: float = 24, new_runs: int | None = None, finish_fraction: float = 0.5,
                seed: int | None = None) -> dict:
        """A night passes: `now` moves on, new runs arrive across spaces (by default at the world's usual rate)
        and `finish_fraction` of the open runs finish, about half of them without a `modified` bump.

        Returns {"new": [run ids], "changed": [run ids whose status changed]}."""
        with self.lock:
            rng = self._rng("advance") if seed is None else random.Random(seed)
            start = self._now_epoch
            end = start + int(hours * 3600)
            self._now_epoch = end
            changed = self._finish_some(rng, finish_fraction, start, end)
            active = [s for s in self._spaces.values() if s.active]
            if new_runs is None:
                total = sum(len(s.items) for s in active)
                new_runs = max(1, round(total * hours / (HISTORY_DAYS * 24))) if active else 0
            new = []
            if active and new_runs:
                picks = Counter(rng.choices(active, weights=[len(s.items) + 1 for s in active], k=new_runs))
                for space in active:
                    n = picks[space]
                    if n:
                        epochs = _sorted_epochs(rng, n, start + 1, end)
                        # Fresh runs are likelier still going when the nightly load starts.
                        new += self._generate(space, epochs, rng, min(1.0, 4 * self.open_fraction))
            return {"new": new, "changed": changed}

    # Building

    def _rng(self, purpose: str) -> random.Random:
        """A fresh generator per use, so each call's randomness depends only on the seed and the call sequence."""
        self._rng_uses += 1
        return random.Random(f"{self.seed}/{purpose}/{self._rng_uses}")

    def _active(self, token: str) -> _Space:
        space = self._spaces.get(token)
        if space is None or not space.active:
            raise KeyError(token)
        return space

    def _find(self, run_id: str) -> tuple[_Space, dict]:
        for space in self._spaces.values():
            item = space.by_id.get(run_id)
            if item is not None:
                return space, item
        raise KeyError(run_id)

    def _create_space(self, n: int, start: int, end: int, token: str | None = None) -> _Space:
        rng = self._rng("space")
        while token is None or token in self._spaces:
            token = "".join(rng.choices(_TOKEN_ALPHABET, k=24))
        number = len(self._spaces)
        name = _SPACE_NAMES[number % len(_SPACE_NAMES)]
        if number >= len(_SPACE_NAMES):
            name = f"{name} {number // len(_SPACE_NAMES) + 1}"
        slug = f"{name.lower().replace(' ', '-')}-{''.join(rng.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=6))}"
        content_type = rng.choice(_CONTENT_TYPES)
        fields = {
            "name": name,
            "slug": slug,
            "token": token,
            "description": f"{name} handled by the {self.org_handle} voice agents",
            "logo": rng.choice((None, f"https://cdn.unpod.ai/media/space/logo/{slug}.png")),
            "privacy_type": rng.choices(("shared", "private", "public"), (6, 3, 1))[0],
            "space_type": rng.choices(("general", "knowledge_base"), (8, 2))[0],
            "content_type": content_type,
            "organization": {"name": self.org_handle.capitalize(), "domain_handle": self.org_handle},
        }
        # A space writes mostly to its own collection, some to collections shared by content type; the weights
        # repeat the first, so rng.choices picks 60/30/10.
        shared = rng.choice([c for c in _CONTENT_TYPES if c != content_type])
        collections = [f"collection_data_{token}"] * 6 + [f"collection_data_{content_type}"] * 3 + [
            f"collection_data_{shared}"]
        # Internal ids grow with creation, with gaps left by other organizations' spaces.
        self._last_space_id += rng.randint(1, 40)
        users = rng.sample(self._org_users, rng.randint(2, 6))
        # A distinct node (the UUID's host part) per space keeps run ids unique across spaces by construction.
        nodes = {s.node_hex for s in self._spaces.values()}
        node = rng.getrandbits(48)
        while f"{node:012x}" in nodes:
            node = rng.getrandbits(48)
        space = _Space(token, str(self._last_space_id), fields, users, collections, node)
        self._spaces[token] = space
        self._generate(space, _sorted_epochs(rng, n, start, end), rng, self.open_fraction, self.stuck_share)
        return space

    def _generate(self, space: _Space, epochs: list[int], rng: random.Random, open_fraction: float = 0.0,
                  stuck_share: float = 0.0, status: str | None = None) -> list[str]:
        """Append runs created at the sorted `epochs` to a space and return their ids. Statuses and durations are
        realistic unless `status` is given: then every run has it, with modified == created."""
        n = len(epochs)
        plan = [status] * n if status else self._open_plan(epochs, rng, open_fraction, stuck_share)
        modes = rng.choices(RUN_MODES, _MODE_WEIGHTS, k=n)
        collections = rng.choices(space.collections, k=n)
        users = rng.choices(space.users, k=n)
        terminal = rng.choices(TERMINAL_STATUSES, _TERMINAL_WEIGHTS, k=n)
        durations = rng.choices(_terminal_durations(), k=n)
        batches = rng.choices(_BATCH_COUNTS, _BATCH_WEIGHTS, k=n)
        now = self._now_epoch
        random_ = rng.random
        getrandbits = rng.getrandbits
        by_id = space.by_id
        items = space.items
        ids = []
        # The hot loop of a million-run build: locals, bulk draws above, no helper calls but the two formatters.
        for i, created in enumerate(epochs):
            run_status = plan[i]
            if run_status is None:
                run_status = terminal[i]
                duration = durations[i]
            elif status is None and run_status in _WORKING_STATUSES:
                duration = int(random_() * min(now - created, 3600))
            else:
                duration = 0
            stamp = format_timestamp(created)
            run_id = _uuid1_run_id(getrandbits(37), created, space.node_hex)
            while run_id in by_id:
                run_id = _uuid1_run_id(getrandbits(37), created, space.node_hex)
            run = {
                "space_id": space.space_id,
                "user": users[i],
                "thread_id": None if random_() < 0.6 else str(100_000_000_000 + getrandbits(39)),
                "run_id": run_id,
                "collection_ref": collections[i],
                "run_mode": modes[i],
                "status": run_status,
                "batch_count": batches[i],
                "created": stamp,
                "modified": format_timestamp(min(created + duration, now)) if duration > 0 else stamp,
            }
            items.append(run)
            by_id[run_id] = run
            ids.append(run_id)
        if epochs:
            space.newest_epoch = max(space.newest_epoch, epochs[-1])
        return ids

    def _open_plan(self, epochs: list[int], rng: random.Random, open_fraction: float,
                   stuck_share: float) -> list[str | None]:
        """For each run, its open status or None (terminal): about `open_fraction` open, mostly among the newest
        runs, `stuck_share` of them old and stuck."""
        n = len(epochs)
        target = open_fraction * n
        recent_target = (1 - stuck_share) * target
        now = self._now_epoch
        young = sum(1 for e in epochs if now - e < RECENT_DAYS * 86400)
        not_stale = sum(1 for e in epochs if now - e < STALE_DAYS * 86400)
        window = min(not_stale, max(young, math.ceil(recent_target / RECENT_OPEN_CAP)))
        p_recent = min(1.0, recent_target / window) if window else 0.0
        old = n - window
        p_stuck = min(1.0, (target - p_recent * window) / old) if old else 0.0
        plan: list[str | None] = []
        for i, created in enumerate(epochs):
            if rng.random() >= (p_recent if i >= old else p_stuck):
                plan.append(None)
            elif now - created < RECENT_DAYS * 86400:
                plan.append(rng.choices(OPEN_STATUSES, _RECENT_OPEN_WEIGHTS)[0])
            else:
                # Nothing runs for days: an older open run is waiting.
                plan.append(rng.choices(_STUCK_STATUSES, _STUCK_WEIGHTS)[0])
        return plan

    def _finish_some(self, rng: random.Random, fraction: float, start: int, end: int) -> list[str]:
        open_runs = [(space, item) for space in self._spaces.values() if space.active for item in space.items
                     if item["status"] not in TERMINAL_STATUSES and id(item) not in space.raw]
        changed = []
        for space, run in rng.sample(open_runs, round(fraction * len(open_runs))):
            run["status"] = rng.choices(TERMINAL_STATUSES, _TERMINAL_WEIGHTS)[0]
            earliest = max(start, _parse_epoch(run["modified"])) + 1
            if rng.random() < 0.5:
                finished = rng.randint(earliest, max(earliest, end))
                run["modified"] = format_timestamp(finished)
            else:
                # A silent finish happens during the night too; drawn apart, so a seed's worlds stay as they were.
                finished = random.Random(f"{self.seed}/finish/{run['run_id']}").randint(min(earliest, end), end)
            self._finished[run["run_id"]] = finished
            space.changed(run)
            changed.append(run["run_id"])
        return changed


def _check_shape(shape: str) -> None:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {sorted(SHAPES)}")


def _split(total: int, spaces: int, skew: bool) -> list[int]:
    """Space sizes summing to `total`: even, or Zipf-like (a few big spaces, a long tail) when `skew`."""
    if spaces <= 0:
        return []
    weights = [1 / (rank + 1) ** 1.2 if skew else 1.0 for rank in range(spaces)]
    shares = [total * w / sum(weights) for w in weights]
    sizes = [math.floor(s) for s in shares]
    for i in sorted(range(spaces), key=lambda i: sizes[i] - shares[i])[:total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _sorted_epochs(rng: random.Random, n: int, start: int, end: int) -> list[int]:
    span = end - start + 1
    random_ = rng.random
    epochs = [start + int(random_() * span) for _ in range(n)]
    epochs.sort()
    return epochs


def _uuid1_run_id(bits: int, created: int, node_hex: str) -> str:
    """`R` + a version-1 UUID's hex for `created`, like the real ids; 37 random `bits` stand in for the sub-second
    ticks and the clock sequence, which a real host takes from its clock."""
    ticks = created * 10_000_000 + (bits >> 14) + _UUID_EPOCH_TICKS
    high = (ticks & 0xFFFFFFFF) << 32 | (ticks >> 16) & 0xFFFF0000 | 0x1000 | (ticks >> 48) & 0x0FFF
    return "R%016x%04x%s" % (high, bits & 0x3FFF | 0x8000, node_hex)
