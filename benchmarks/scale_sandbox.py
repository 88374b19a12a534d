"""The scale benchmark's sandbox: a seeded world served in its own process, and what the benchmark asks of it.

The world and its server run in a spawned child process, so their CPU and memory are never the product's. The
benchmark drives it through a pipe: requests and runs served since the last reset, the floor of a night (from the
world's ground truth), a quiet night, and a check of a loaded database against the world.
"""

from __future__ import annotations

import multiprocessing
import random
import resource
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unpod_runs.sandbox.server import SandboxServer
from unpod_runs.sandbox.world import STALE_DAYS, TERMINAL_STATUSES, World, format_timestamp

# How many runs the warm-up serializes per call: bounded, so it never builds one huge page.
WARM_CHUNK = 10_000


@dataclass(frozen=True)
class WorldSpec:
    """The world to build and serve: its size, its open runs and how many of those are old and stuck."""

    runs: int
    spaces: int
    seed: int
    skew: bool
    open_fraction: float
    stuck_share: float
    latency_ms: float


class CountingWorld(World):
    """A World that counts the runs it serves: a night's floor is counted in runs, not requests."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.runs_served = 0

    def runs_page(self, token: str, skip: int, limit: int) -> tuple[int, bytes]:
        with self.lock:
            count, data = super().runs_page(token, skip, limit)
            remaining = max(0, count - skip)
            self.runs_served += remaining if limit == 0 else min(limit, remaining)
            return count, data


class Census:
    """Per space, how many runs it holds and which are open: what a load saw, which sets the next night's floor."""

    def __init__(self, states: dict[str, list]):
        self.counts = Counter(states["space_token"])
        is_open = [status not in TERMINAL_STATUSES for status in states["status"]]
        self.open = Counter(token for token, flag in zip(states["space_token"], is_open) if flag)
        self.open_ids = [run_id for run_id, flag in zip(states["run_id"], is_open) if flag]

    def floor_after(self, last_load: Census | None) -> int:
        """Runs a night must see: those created since the last load plus those open at the last load.

        Runs are only ever added at the top of a space here (never deleted), so a space's new runs are its growth."""
        if last_load is None:
            return sum(self.counts.values())
        return sum(max(0, count - last_load.counts.get(token, 0)) + last_load.open.get(token, 0)
                   for token, count in self.counts.items())


class Service:
    """What the benchmark can ask of the sandbox process, one method per call."""

    def __init__(self, world: CountingWorld, server: SandboxServer):
        self.world = world
        self.server = server
        self.last_load: Census | None = None

    def reset(self) -> None:
        self.server.reset_counts()
        with self.world.lock:
            self.world.runs_served = 0

    def stats(self) -> dict:
        stats = self.server.stats()
        return {"requests": stats["total"], "by_kind": stats["by_kind"], "runs_served": self.world.runs_served}

    def floor(self) -> int:
        return Census(self.world.states()).floor_after(self.last_load)

    def mark_loaded(self) -> None:
        """Remember the world as the load that just ended saw it."""
        self.last_load = Census(self.world.states())

    def quiet_night(self, share: float, seed: int) -> dict:
        """A night passes with `share` of the runs new or finished: half new runs, half runs open at the last load
        finishing, every other one of those with a `modified` bump and the rest without (the API does both)."""
        changes = max(2, round(share * sum(self.last_load.counts.values())))
        new = self.world.advance(hours=24, new_runs=changes - changes // 2, finish_fraction=0.0, seed=seed)["new"]
        rng = random.Random(seed)
        finishing = rng.sample(self.last_load.open_ids, min(changes // 2, len(self.last_load.open_ids)))
        for i, run_id in enumerate(finishing):
            self.world.set_status(run_id, rng.choices(TERMINAL_STATUSES, (82, 12, 6))[0], bump_modified=i % 2 == 0)
        return {"new": len(new), "finished_bumped": (len(finishing) + 1) // 2,
                "finished_unbumped": len(finishing) // 2}

    def check(self, db: str) -> dict:
        """`unpod.runs` of the database against the world: rows, distinct ids, missing and extra ids, and runs whose
        status or `modified` differ from what the API shows."""
        import duckdb
        import pyarrow as pa

        states = self.world.states()
        truth = pa.table({name: states[name] for name in ("run_id", "status", "modified")})
        if not Path(db).exists():
            return {"rows": 0, "distinct_rows": 0, "world_rows": truth.num_rows, "missing": truth.num_rows,
                    "extra": 0, "stale": 0, "correct": False}
        with duckdb.connect(db, read_only=True) as con:
            con.register("truth", truth)
            rows, distinct = con.execute("select count(*), count(distinct run_id) from unpod.runs").fetchone()
            missing, extra, stale = con.execute(
                """
                select
                    count(*) filter (where stored.run_id is null),
                    count(*) filter (where truth.run_id is null),
                    count(*) filter (where stored.run_id is not null and truth.run_id is not null and (
                        stored.status is distinct from truth.status
                        or epoch(stored.modified)
                            is distinct from epoch(strptime(truth.modified, '%Y-%m-%dT%H:%M:%S'))))
                from truth full outer join unpod.runs as stored on stored.run_id = truth.run_id
                """
            ).fetchone()
        return {"rows": rows, "distinct_rows": distinct, "world_rows": truth.num_rows, "missing": missing,
                "extra": extra, "stale": stale,
                "correct": rows == distinct == truth.num_rows and not missing and not extra and not stale}


def describe(world: World) -> dict:
    """The world as built: runs, spaces, open runs, and the old ones among them (stuck: nothing runs for days)."""
    states = world.states()
    old_before = format_timestamp(int(world.now.timestamp()) - STALE_DAYS * 86400)
    old = sum(1 for created in states["created"] if created < old_before)
    stuck = sum(1 for status, created in zip(states["status"], states["created"])
                if status not in TERMINAL_STATUSES and created < old_before)
    return {"runs": len(states["run_id"]), "spaces": len(world.space_tokens()),
            "open": sum(1 for status in states["status"] if status not in TERMINAL_STATUSES),
            "old": old, "stuck_open": stuck}


def warm_up(world: CountingWorld) -> None:
    """Serialize every run once, so that no night pays the simulator's first serialization."""
    for token in world.space_tokens():
        count, _ = world.runs_page(token, 0, 1)
        for skip in range(0, count, WARM_CHUNK):
            world.runs_page(token, skip, WARM_CHUNK)
    world.runs_served = 0


def serve(spec: WorldSpec, conn: Any) -> None:
    """The child process: build the world, warm it, serve it, and answer calls until told to stop."""
    try:
        started = time.monotonic()
        world = CountingWorld(seed=spec.seed, spaces=spec.spaces, runs=spec.runs, skew=spec.skew,
                              open_fraction=spec.open_fraction, stuck_share=spec.stuck_share)
        built = time.monotonic()
        warm_up(world)
        warmed = time.monotonic()
        server = SandboxServer(world, port=0, latency_ms=spec.latency_ms).start()
        info = {"base_url": server.base_url, "org_handle": world.org_handle, "api_token": world.api_token,
                "build_s": round(built - started, 2), "warm_s": round(warmed - built, 2), **describe(world),
                "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    except Exception:  # the benchmark shows the sandbox's traceback and stops
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", info))
    service = Service(world, server)
    try:
        while True:
            name, args = conn.recv()
            if name == "stop":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", getattr(service, name)(**args)))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    finally:
        server.stop()


class ScaleSandbox:
    """The benchmark's handle on the sandbox process; as a context manager it starts and stops it."""

    def __init__(self, spec: WorldSpec):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(spec, child), name="unpod-scale-sandbox", daemon=True)
        self.info: dict = {}

    def __enter__(self) -> ScaleSandbox:
        self.process.start()
        self.info = self._answer("start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.is_alive():
            try:
                self.call("stop")
            except (OSError, SystemExit):
                pass
            self.process.join(timeout=30)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()

    @property
    def pid(self) -> int:
        return self.process.pid

    def env(self) -> dict[str, str]:
        """What points the product at this sandbox."""
        return {"SOURCES__UNPOD__BASE_URL": self.info["base_url"],
                "SOURCES__UNPOD__ORG_HANDLE": self.info["org_handle"],
                "SOURCES__UNPOD__API_TOKEN": self.info["api_token"]}

    def call(self, name: str, **args: Any) -> Any:
        self.conn.send((name, args))
        return self._answer(name)

    def _answer(self, name: str) -> Any:
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise SystemExit(f"bench-scale: the sandbox process died during {name!r} "
                             f"(exit code {self.process.exitcode})") from None
        if status == "error":
            raise SystemExit(f"bench-scale: the sandbox failed during {name!r}:\n{value}")
        return value
