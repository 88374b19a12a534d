"""Night 1 and a quiet night of `unpod-runs load` on each engine, on the same sandbox world.

Serves one world (default 20 spaces, 20,000 runs, no latency), then for each engine (the DuckDB file, DuckLake with
a SQLite catalog, DuckLake with a PostgreSQL catalog, PostgreSQL) runs night 1 (everything is new) and a quiet
night (an hour passes, nothing new, nothing finishes) as child processes, and reports their wall seconds. The
PostgreSQL is a private server from the locked pgserver wheel, started here in a temporary folder.

  python benchmarks/engines.py [--runs 20000] [--spaces 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pgserver
import psycopg2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pipelines"))

from unpod_runs.sandbox.server import SandboxServer  # noqa: E402
from unpod_runs.sandbox.world import World  # noqa: E402


def postgres_database(server: pgserver.PostgresServer, name: str) -> str:
    socket = server.get_postmaster_info().socket_dir
    admin = psycopg2.connect(dbname="postgres", user="postgres", host=str(socket))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"create database {name}")
    admin.close()
    return f"postgresql://postgres:@localhost/{name}?host={socket}"


def load(folder: Path, destination: str, env: dict) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one load (the command's process; a PostgreSQL server's work is not in it)."""
    started, cpu_before = time.monotonic(), _children_cpu()
    result = subprocess.run(
        [sys.executable, "-m", "unpod_runs.cli", "load", "--db", str(folder / "unpod_runs.duckdb"),
         "--destination", destination], env=env, capture_output=True, text=True, cwd=folder,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{destination} load failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--spaces", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="unpod-engines-"))
    root.chmod(0o755)  # run as root, the PostgreSQL server runs as a user of its own
    postgres = pgserver.get_server(root / "postgres", cleanup_mode="stop")
    world = World(seed=7, spaces=args.spaces, runs=args.runs, skew=True)
    try:
        with SandboxServer(world) as sandbox:
            base = {key: value for key, value in os.environ.items() if not key.startswith(("SOURCES__", "DLT_", "DESTINATION__"))}
            base.update({"SOURCES__UNPOD__API_TOKEN": world.api_token, "SOURCES__UNPOD__BASE_URL": sandbox.base_url,
                         "SOURCES__UNPOD__ORG_HANDLE": world.org_handle, "PYTHONPATH": str(REPO / "pipelines")})
            engines = {
                "duckdb (the file)": ("duckdb", {}),
                "ducklake, SQLite catalog": ("ducklake", {}),
                "ducklake, PostgreSQL catalog": ("ducklake", {
                    "DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG": postgres_database(postgres, "lake_catalog")}),
                "postgres": ("postgres", {"DESTINATION__POSTGRES__CREDENTIALS": postgres_database(postgres, "unpod")}),
            }
            timings = {}
            for label, (destination, settings) in engines.items():
                folder = root / destination / str(len(timings))
                folder.mkdir(parents=True)
                env = {**base, **settings, "DLT_DATA_DIR": str(folder / "dlt")}
                first = load(folder, destination, env)
                world.advance(hours=1, new_runs=0, finish_fraction=0.0)
                quiet = load(folder, destination, env)
                timings[label] = (first, quiet)
                print(f"{label:<30} night 1 {first[0]:6.1f} s wall {first[1]:6.1f} s CPU   "
                      f"quiet night {quiet[0]:5.1f} s wall {quiet[1]:5.1f} s CPU", flush=True)
    finally:
        postgres.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.runs} runs in {args.spaces} spaces, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
