"""``unpod-runs demo``: two nights against the bundled sandbox, with no credentials and no real API.

It writes only in the folder of its ``--db`` (default ``build/demo/``), never ``data/unpod_runs.duckdb``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from unpod_runs.pipeline.load import run_load
from .sandbox.server import SandboxServer
from .sandbox.world import World
from unpod_runs.analytics.status import render_status
from unpod_runs.pipeline.workspace import Workspace

log = logging.getLogger(__name__)

DEMO_SEED = 7
DEMO_SPACES = 8
DEMO_RUNS = 6000


def run_demo(db_path: Path) -> int:
    """Serve a sandbox world, load night one (full), advance a day, load night two (incremental), report."""
    db_path = db_path.resolve()
    if db_path == (Path.cwd() / "data" / "unpod_runs.duckdb").resolve():
        raise SystemExit("unpod-runs demo: refusing to overwrite the production database data/unpod_runs.duckdb")
    out = db_path.parent
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.html"
    # Start from nothing each time, removing only what the demo itself writes.
    for leftover in (Workspace.for_db(db_path).work_dir, out / "dlt"):
        shutil.rmtree(leftover, ignore_errors=True)
    db_path.unlink(missing_ok=True)
    world = World(seed=DEMO_SEED, spaces=DEMO_SPACES, runs=DEMO_RUNS, skew=True)
    with SandboxServer(world, latency_ms=5) as server:
        os.environ.update(
            {
                "SOURCES__UNPOD__API_TOKEN": world.api_token,
                "SOURCES__UNPOD__BASE_URL": server.base_url,
                "SOURCES__UNPOD__ORG_HANDLE": world.org_handle,
                "DLT_DATA_DIR": str(out / "dlt"),
            }
        )
        os.environ.pop("SOURCES__UNPOD__SPACE_TOKENS", None)
        print(f"sandbox serving {len(world.space_tokens())} spaces, {len(world.truth())} runs at {server.base_url}\n")
        first = run_load(db_path, report_path=report_path)
        print("night 1\n" + first.render() + "\n")
        night = world.advance(hours=24, seed=DEMO_SEED + 1)
        print(f"a day passes: {len(night['new'])} new runs, {len(night['changed'])} runs change status\n")
        second = run_load(db_path, report_path=report_path)
        print("night 2\n" + second.render() + "\n")
    print(render_status(db_path))
    print(f"\ndatabase  {db_path}\nreport    {report_path}\nnotebooks notebooks/ (they open {db_path.name} read-only)")
    return max(first.exit_code, second.exit_code)
