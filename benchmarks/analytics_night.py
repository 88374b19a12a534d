"""What a quiet night costs after extraction, at millions of runs: models, data checks, report and publish.

A real load of a small sandbox organization (50 spaces) sets up the files as `load` leaves them; `unpod.runs` is
then inflated with SQL to --runs runs over two years, and the models are built in full (night 0). Each quiet night
then writes 400 runs as a load would (200 new, 200 open runs finishing, with a new `_dlt_load_id`) and runs, in a
fresh process, what `load` runs after extraction: `build_analytics` and publish. It prints wall and CPU seconds
per step, the peak RSS of that process and the size of the published file.

  .venv/bin/python benchmarks/analytics_night.py --runs 5000000 --nights 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "pipelines"))

CHANGED_RUNS = 200
NEW_RUNS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5_000_000)
    parser.add_argument("--nights", type=int, default=3)
    # Each step in its own process: Linux carries a process's peak RSS over to the children it starts.
    parser.add_argument("--set-up", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--night", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.set_up:
        print(json.dumps(set_up(args.set_up, args.runs, args.set_up.parents[1] / "dlt")))
        return
    if args.night:
        print(json.dumps(quiet_night(args.night)))
        return
    with tempfile.TemporaryDirectory(prefix="unpod-analytics-") as folder:
        db = Path(folder) / "data" / "unpod_runs.duckdb"
        seconds = _child("--set-up", str(db), "--runs", str(args.runs))
        print(f"night 0 (a full build of {args.runs:,} runs): {seconds:.2f} s")
        for night in range(1, args.nights + 1):
            result = _child("--night", str(db))
            steps = ", ".join(f"{name} {wall:.2f} s ({cpu:.2f} CPU)" for name, (wall, cpu) in result["steps"].items())
            print(f"night {night}: {result['total']:.2f} s after extraction: {steps}; peak RSS "
                  f"{result['peak_mib']:.0f} MiB; published {result['published_mib']:.0f} MiB")


def _child(*args: str):
    child = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def set_up(db: Path, runs: int, dlt_dir: Path) -> float:
    import duckdb

    from unpod_runs.pipeline.load import build_analytics, run_load
    from unpod_runs.sandbox.server import SandboxServer
    from unpod_runs.sandbox.world import World
    from unpod_runs.pipeline.workspace import Workspace

    world = World(seed=5, spaces=50, runs=2000)
    with SandboxServer(world) as server:
        os.environ.update({
            "SOURCES__UNPOD__API_TOKEN": world.api_token,
            "SOURCES__UNPOD__BASE_URL": server.base_url,
            "SOURCES__UNPOD__ORG_HANDLE": world.org_handle,
            "DLT_DATA_DIR": str(dlt_dir),
        })
        run_load(db)
    workspace = Workspace.for_db(db)
    workspace.prepare()  # the working copy, seeded from the file the load published
    with duckdb.connect(str(workspace.work_db)) as con:
        (loaded,) = con.execute("select count(*) from unpod.runs").fetchone()
        # Copies of the loaded runs, each shifted back by whole days over two years; most open copies finished.
        con.execute(
            f"""
            insert into unpod.runs by name
            select runs.* replace (
                runs.run_id || '_' || lpad(copy.n::varchar, 5, '0') as run_id,
                runs.created - (to_days((copy.n % 365) * 2) + to_seconds(copy.n)) as created,
                runs.modified - (to_days((copy.n % 365) * 2) + to_seconds(copy.n)) as modified,
                case
                    when runs.status not in ('completed', 'failed', 'partially_completed')
                        and hash(runs.run_id, copy.n) % 200 <> 0 then 'completed'
                    else runs.status
                end as status
            )
            from unpod.runs as runs, (select range as n from range(1, {runs // loaded + 1})) as copy
            limit {runs - loaded}
            """
        )
        started = time.perf_counter()
        build_analytics(con, db.with_name("report.html"), full=True)
    workspace.publish()
    return time.perf_counter() - started


def quiet_night(db: Path) -> dict:
    import duckdb

    import unpod_runs.analytics.checks as checks
    import unpod_runs.analytics.models as models
    import unpod_runs.analytics.report as report
    from unpod_runs.pipeline.load import build_analytics
    from unpod_runs.pipeline.workspace import Workspace

    steps: dict[str, tuple[float, float]] = {}
    for module, name, label in ((models, "build_models", "models"), (checks, "run_checks", "checks"),
                                (report, "write_report", "report")):
        setattr(module, name, _timed(getattr(module, name), label, steps))
    workspace = Workspace.for_db(db)
    _timed(workspace.prepare, "seed", steps)()  # as a load seeds its working copy from the published file
    with duckdb.connect(str(workspace.work_db)) as con:
        (latest,) = con.execute("select max(_dlt_load_id) from unpod.runs").fetchone()
        load_id = f"{int(float(latest)) + 86_400}.5"
        con.execute(
            f"""
            create temp table finished as
            select * replace ('{load_id}' as _dlt_load_id, 'completed' as status, modified + interval 1 hour as modified)
            from unpod.runs
            where status not in ('completed', 'failed', 'partially_completed') and deleted_at is null
            limit {CHANGED_RUNS};
            delete from unpod.runs where run_id in (select run_id from finished);
            insert into unpod.runs by name select * from finished;
            insert into unpod.runs by name
            select * replace (run_id || '_{load_id}' as run_id, '{load_id}' as _dlt_load_id, now() as created,
                              now() as modified, 'running' as status)
            from unpod.runs using sample {NEW_RUNS} rows;
            checkpoint;
            """
        )
        started = time.perf_counter()
        build_analytics(con, db.with_name("report.html"), full=False)
    publish = _timed(workspace.publish, "publish", steps)
    publish()
    return {
        "total": time.perf_counter() - started,
        "steps": steps,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "published_mib": db.stat().st_size / 2**20,
    }


def _timed(function, label: str, steps: dict):
    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            steps[label] = (time.perf_counter() - wall, time.process_time() - cpu)

    return timed


if __name__ == "__main__":
    main()
