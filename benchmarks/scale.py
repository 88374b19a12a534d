"""The scale benchmark: does a quiet night cost what changed, at any history size?

For each size: a seeded world with a long history (90 days) and stuck open runs across all of it (2% of the runs
open, a quarter of those old and stuck: about 0.5% of the old runs), served by the sandbox in its own process. Then
  night 1: `unpod-runs load` into an empty database (a full read);
  quiet nights: 0.2% of the runs new or finished (the finishes half with a `modified` bump, half without), then
  `unpod-runs load` again, incrementally.
For every night: runs served by the sandbox against the night's floor (runs created since the last load plus runs
open at the last load, from the world's truth), requests, wall time by phase (from the product's `event=phase`
log lines), peak RSS and CPU of the product's process, bytes kept on disk after it (the published database, the
working files beside it, DLT_DATA_DIR) and their growth, a check of the database against the world; and the
issue's targets, each with PASS or MISS. Results go to benchmarks/results/ as JSON and Markdown.

    make bench-scale                                  # 1M and 5M runs (about 10 minutes, 6 GB of RAM)
    .venv/bin/python benchmarks/scale.py --sizes 400k # the 400,000-run world (about 30 seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "pipelines")]

import bench  # noqa: E402  (the sibling module; its process helpers time and measure a child the same way)
from scale_sandbox import ScaleSandbox, WorldSpec  # noqa: E402

MIB = 1024 * 1024
DEFAULT_SIZES = [1_000_000, 5_000_000]
DB_NAME = "unpod_runs.duckdb"
# The targets.
SERVED_SLACK_PER_SPACE = 50
QUIET_WALL_SHARE = 0.3
QUIET_WALL_AT_5M_S = 10.0
QUIET_PEAK_AT_5M_MIB = 1024
NIGHT1_PEAK_AT_5M_MIB = 1536
GROWTH_PER_QUIET_NIGHT = 1 * MIB
FIVE_MILLION = 5_000_000
# Lines of the product's log that are not phase marks, though the shared line reader stamps them too.
NOT_PHASES = {"reported_s", "exit"} | {name for _, name in bench.LOG_MARKS}


@dataclass
class Night:
    night: int
    kind: str
    wall_s: float
    exit_code: int
    requests: int
    runs_served: int
    floor: int
    peak_mib: float
    cpu_s: float
    sandbox_cpu_s: float
    other_cpu_s: float
    phases: dict
    disk: dict
    check: dict
    change: dict = field(default_factory=dict)
    growth_bytes: int | None = None
    reported_s: float | None = None

    @property
    def served_per_floor(self) -> float | None:
        return round(self.runs_served / self.floor, 2) if self.floor else None


def phases(marks: dict[str, float]) -> dict[str, float]:
    """Seconds of each phase: startup up to the first `event=phase` mark, then each mark to the next, the last one
    (publish) up to the process's exit."""
    points = sorted((at, name) for name, at in marks.items() if name not in NOT_PHASES and ":" not in name)
    starts = [(0.0, "startup")] + points
    ends = [at for at, _ in points] + [marks["exit"]]
    return {name: round(end - start, 3) for (start, name), end in zip(starts, ends)}


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def disk_usage(db: Path, dlt_dir: Path) -> dict[str, int]:
    """Bytes kept after a night: the published file (and any WAL), everything else beside it (the report, the
    lock, and a working copy if the night left one), and dlt's folder."""
    published = tree_bytes(db) + tree_bytes(db.with_name(db.name + ".wal"))
    working = tree_bytes(db.parent) - published
    dlt = tree_bytes(dlt_dir)
    return {"published": published, "working": working, "dlt": dlt, "total": published + working + dlt}


def run_night(sandbox: ScaleSandbox, folder: Path, night: int, settings: dict[str, str], profile: bool = False) -> Night:
    db, dlt_dir = folder / "db" / DB_NAME, folder / "dlt"
    db.parent.mkdir(parents=True, exist_ok=True)
    floor = sandbox.call("floor")
    sandbox.call("reset")
    env = bench.child_env({**sandbox.env(), "DLT_DATA_DIR": str(dlt_dir), **settings})
    # With --profile, the product runs under cProfile: nightN.prof beside the night's log (timings then run slower).
    profiler = ["-m", "cProfile", "-o", str(folder / f"night{night}.prof")] if profile else []
    cmd = [sys.executable, *profiler, "-m", "unpod_runs.cli", "load", "--db", str(db)]
    sandbox_before = bench.process_cpu_seconds(sandbox.pid)
    busy_before, self_before = bench.machine_busy_seconds(), bench.self_cpu_seconds()
    wall, code, peak, cpu, marks = bench.run_child(cmd, env, folder, folder / f"night{night}.log")
    sandbox_cpu = bench.process_cpu_seconds(sandbox.pid) - sandbox_before
    other = (bench.machine_busy_seconds() - busy_before - cpu - sandbox_cpu
             - (bench.self_cpu_seconds() - self_before))
    stats = sandbox.call("stats")
    check = sandbox.call("check", db=str(db))
    m = Night(night, "full" if night == 1 else "quiet", round(wall, 3), code, stats["requests"], stats["runs_served"],
              floor, round(peak, 1), round(cpu, 2), round(sandbox_cpu, 2), round(max(0.0, other), 2),
              phases(marks), disk_usage(db, dlt_dir), check, reported_s=marks.get("reported_s"))
    print(f"  night {night}: {m.wall_s:7.2f} s, {m.requests:5d} requests, {m.runs_served:9,d} runs served "
          f"(floor {m.floor:,}), peak {m.peak_mib:6.0f} MiB, {m.disk['total'] / MIB:8.1f} MiB kept, exit {code}, "
          f"{'exact' if check['correct'] else 'MISMATCH ' + json.dumps(check)}", flush=True)
    if code != 0:
        tail = (folder / f"night{night}.log").read_text(errors="replace").splitlines()[-15:]
        print("  !!! the load exited %d:\n    %s" % (code, "\n    ".join(tail)), flush=True)
    return m


def run_size(args: argparse.Namespace, runs: int, workdir: Path, settings: dict[str, str]) -> dict:
    spec = WorldSpec(runs=runs, spaces=args.spaces, seed=args.seed, skew=args.skew, open_fraction=args.open_share,
                     stuck_share=args.stuck_share, latency_ms=args.latency_ms)
    print(f"{runs:,} runs in {args.spaces} spaces: building the world...", flush=True)
    folder = workdir / f"runs{runs}"
    folder.mkdir(parents=True)
    with ScaleSandbox(spec) as sandbox:
        world = {key: value for key, value in sandbox.info.items()
                 if key not in ("base_url", "org_handle", "api_token")}
        print(f"  built in {world['build_s']} s, warmed in {world['warm_s']} s, sandbox peak {world['peak_mib']:,.0f} "
              f"MiB; {world['open']:,} runs open, {world['stuck_open']:,} of them old and stuck", flush=True)
        nights = [run_night(sandbox, folder, 1, settings, args.profile)]
        for night in range(2, args.quiet_nights + 2):
            sandbox.call("mark_loaded")
            change = sandbox.call("quiet_night", share=args.quiet_share, seed=args.seed + night)
            m = run_night(sandbox, folder, night, settings, args.profile)
            m.change = change
            m.growth_bytes = m.disk["total"] - nights[-1].disk["total"]
            nights.append(m)
    return {"runs": runs, "world": world, "nights": nights, "targets": targets(runs, args.spaces, nights)}


def targets(runs: int, spaces: int, nights: list[Night]) -> list[dict]:
    """The issue's targets for one size, each with its measured value, its limit and whether it passed."""
    first = nights[0]
    found = [exact(first)]
    if runs >= FIVE_MILLION:
        found.append(target("night 1: peak RSS (at 5M)", first.peak_mib, NIGHT1_PEAK_AT_5M_MIB, "MiB", strict=True))
    for m in nights[1:]:
        n = f"night {m.night}"
        found += [
            exact(m),
            target(f"{n}: runs served <= 2 x (floor + {SERVED_SLACK_PER_SPACE} x spaces)", m.runs_served,
                   2 * (m.floor + SERVED_SLACK_PER_SPACE * spaces), "runs"),
            target(f"{n}: requests <= max(2 x spaces + 10, night 1's / 4)", m.requests,
                   max(2 * spaces + 10, first.requests / 4), "requests"),
            target(f"{n}: wall <= {QUIET_WALL_SHARE} x night 1's (the issue sets it at 400k)", m.wall_s,
                   round(QUIET_WALL_SHARE * first.wall_s, 3), "s"),
            target(f"{n}: bytes kept grow <= 1 MiB", m.growth_bytes, GROWTH_PER_QUIET_NIGHT, "bytes"),
        ]
        if runs >= FIVE_MILLION:
            found += [target(f"{n}: wall (at 5M)", m.wall_s, QUIET_WALL_AT_5M_S, "s", strict=True),
                      target(f"{n}: peak RSS (at 5M)", m.peak_mib, QUIET_PEAK_AT_5M_MIB, "MiB", strict=True)]
    return found


def exact(m: Night) -> dict:
    """Exit 0, and every run stored once with the status and `modified` the API shows."""
    c = m.check
    wrong = c["missing"] + c["extra"] + c["stale"] + c["rows"] - c["distinct_rows"]
    return {**target(f"night {m.night}: exact", wrong, 0, "runs wrong"), "pass": wrong == 0 and m.exit_code == 0}


def target(name: str, measured: float, limit: float, unit: str, strict: bool = False) -> dict:
    passed = measured < limit if strict else measured <= limit
    return {"name": name, "measured": measured, "limit": limit, "unit": unit, "strict": strict, "pass": passed}


# ----------------------------------------------------------------------------------------------------------------
# Reporting


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:,.1f}"


def world_line(args: argparse.Namespace, result: dict) -> str:
    w, quiet = result["world"], result["nights"][1:]
    change = quiet[0].change if quiet else {}
    return (f"**{result['runs']:,} runs** in {w['spaces']} {'skewed' if args.skew else 'even'} spaces, seed "
            f"{args.seed}, {args.latency_ms:g} ms a request: {w['open']:,} open ({w['open'] / w['runs']:.1%}), of "
            f"which {w['stuck_open']:,} old and stuck ({w['stuck_open'] / max(1, w['old']):.2%} of the {w['old']:,} "
            f"runs older than 14 days). Built in {w['build_s']} s and warmed in {w['warm_s']} s by the sandbox "
            f"process (its peak {w['peak_mib']:,.0f} MiB). "
            + (f"A quiet night: {change['new']:,} new runs, {change['finished_bumped']:,} finished with a `modified` "
               f"bump and {change['finished_unbumped']:,} without." if change else ""))


def nights_table(nights: list[Night]) -> str:
    rows = [[m.night, m.kind, f"{m.runs_served:,}", f"{m.floor:,}", m.served_per_floor, m.requests, f"{m.wall_s:.2f}",
             f"{m.peak_mib:,.0f}", f"{m.cpu_s:.1f}", f"{m.sandbox_cpu_s:.1f}", f"{m.other_cpu_s:.1f}",
             mib(m.disk["published"]), mib(m.disk["working"]), mib(m.disk["dlt"]), mib(m.disk["total"]),
             mib(m.growth_bytes),
             "exact" if m.check["correct"] and m.exit_code == 0 else f"MISMATCH (exit {m.exit_code})"]
            for m in nights]
    return bench.table(["night", "kind", "runs served", "floor", "served/floor", "requests", "wall s", "peak MiB",
                        "CPU s", "sandbox CPU s", "others' CPU s", "published MiB", "working MiB", "dlt MiB",
                        "kept MiB", "growth MiB", "check"], rows)


def phases_table(nights: list[Night]) -> str:
    names = list(dict.fromkeys(name for m in nights for name in m.phases))
    rows = [[f"night {m.night}"] + [f"{m.phases.get(name, 0):.2f}" for name in names] + [f"{m.wall_s:.2f}"]
            for m in nights]
    return ("Wall time by phase (s; each phase from its `event=phase` log line to the next; startup is the "
            "interpreter, imports, configuration and the spaces request; publish runs to the process's exit):\n\n"
            + bench.table(["night"] + names + ["total"], rows))


def targets_table(found: list[dict]) -> str:
    def shown(value: float, unit: str) -> str:
        if unit == "bytes":
            return f"{mib(value)} MiB"
        if unit == "s":
            return f"{value:.2f} s"
        return f"{value:,.0f} {unit}" if unit == "MiB" else f"{value:,.2f}".rstrip("0").rstrip(".") + f" {unit}"

    return "Targets:\n\n" + bench.table(
        ["target", "measured", "limit", "verdict"],
        [[t["name"], shown(t["measured"], t["unit"]), ("< " if t["strict"] else "<= ") + shown(t["limit"], t["unit"]),
          "PASS" if t["pass"] else "MISS"] for t in found])


def contention_note(results: list[dict]) -> str:
    nights = [m for result in results for m in result["nights"]]
    busy = [m for m in nights if m.other_cpu_s > 0.1 * m.wall_s]
    if not busy:
        return "Other processes used less than 10% of a core during every night."
    worst = max(busy, key=lambda m: m.other_cpu_s / m.wall_s)
    return (f"WARNING: other processes competed for the CPU during {len(busy)} of {len(nights)} nights (at worst "
            f"{worst.other_cpu_s:.1f} CPU s in {worst.wall_s:.1f} s): CPU-bound timings are pessimistic; rerun on an "
            "idle machine.")


def size_label(runs: int) -> str:
    if runs % 1_000_000 == 0:
        return f"{runs // 1_000_000}M"
    return f"{runs // 1000}k" if runs % 1000 == 0 else str(runs)


def markdown(args: argparse.Namespace, results: list[dict], info: dict, version: dict, settings: tuple) -> str:
    page_size, workers = settings
    quiet = f"{args.quiet_nights} quiet night" + ("s" if args.quiet_nights > 1 else "")
    parts = [f"## unpod-runs at scale: night 1 and {quiet}",
             f"`python benchmarks/scale.py {' '.join(args.argv)}`".replace("  ", " ")
             + f" at {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; the product with page size {page_size} and "
             f"{workers} workers. The floor of a night is the runs created since the last load plus the runs open at "
             "the last load (all runs on night 1)."]
    for result in results:
        parts += [f"### {size_label(result['runs'])}", world_line(args, result), nights_table(result["nights"]),
                  phases_table(result["nights"]), targets_table(result["targets"])]
    parts += [contention_note(results), f"Machine: {bench.machine_line(info)}. {bench.version_line(version)}"]
    return "\n\n".join(parts)


def results_name(args: argparse.Namespace) -> str:
    if args.results_name:
        return args.results_name
    if args.sizes == DEFAULT_SIZES and args.quiet_nights == 2:
        return "bench-scale"
    return "bench-scale-" + "-".join(size_label(size) for size in args.sizes)


# ----------------------------------------------------------------------------------------------------------------
# Command line


def size(text: str) -> int:
    """400000, 400k, 1M, 2.5M."""
    scale = {"k": 1000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    try:
        value = round(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of runs like 400000, 400k or 5M, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of runs, got {text!r}")
    return value


def sizes(text: str) -> list[int]:
    return [size(part.strip()) for part in text.split(",") if part.strip()]


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text}")
    return value


def milliseconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a delay of 0 ms or more, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/scale.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=DEFAULT_SIZES,
                        help="comma list of world sizes in runs (default 1M,5M)")
    parser.add_argument("--quiet-nights", type=bench.positive, default=2, help="quiet nights after night 1 (default 2)")
    parser.add_argument("--spaces", type=bench.positive, default=50, help="spaces in the world (default %(default)s)")
    parser.add_argument("--even", dest="skew", action="store_false", help="even space sizes (default: skewed)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the world (default %(default)s)")
    parser.add_argument("--open-share", type=share, default=0.02,
                        help="share of the runs open when the world is built (default %(default)s)")
    parser.add_argument("--stuck-share", type=share, default=0.25,
                        help="share of the open runs that are old and stuck, across the history (default %(default)s)")
    parser.add_argument("--quiet-share", type=share, default=0.002,
                        help="share of the runs new or finished before each quiet night (default %(default)s)")
    parser.add_argument("--latency-ms", type=milliseconds, default=0.0, help="delay per API request (default 0)")
    parser.add_argument("--page-size", type=bench.positive, help="the product's SOURCES__UNPOD__PAGE_SIZE")
    parser.add_argument("--workers", type=bench.positive, help="the product's SOURCES__UNPOD__WORKERS")
    parser.add_argument("--results-dir", type=Path, default=bench.RESULTS,
                        help="where the JSON and Markdown go (default benchmarks/results/)")
    parser.add_argument("--results-name", metavar="NAME", help="NAME.json and NAME.md (default: after the sizes)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, logs)")
    parser.add_argument("--profile", action="store_true",
                        help="run the product under cProfile (nightN.prof in the kept folder; implies --keep)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    bench.START_VERSION.update(bench.product_version())
    settings = {}
    if args.page_size:
        settings["SOURCES__UNPOD__PAGE_SIZE"] = str(args.page_size)
    if args.workers:
        settings["SOURCES__UNPOD__WORKERS"] = str(args.workers)
    workdir = Path(tempfile.mkdtemp(prefix="unpod-bench-scale-"))
    try:
        results = [run_size(args, runs, workdir, settings) for runs in args.sizes]
    finally:
        if args.keep or args.profile:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    info, version = bench.machine(), bench.product_version()
    md = markdown(args, results, info, version, bench.effective_settings(args.page_size, args.workers))
    print("\n" + md)
    name = results_name(args)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    payload = {"mode": "scale", "argv": args.argv, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": info, "product_version": version,
               "settings": dict(zip(("page_size", "workers"), bench.effective_settings(args.page_size, args.workers))),
               "scenario": {"spaces": args.spaces, "skew": args.skew, "seed": args.seed, "open_share": args.open_share,
                            "stuck_share": args.stuck_share, "quiet_share": args.quiet_share,
                            "latency_ms": args.latency_ms, "quiet_nights": args.quiet_nights},
               "sizes": [{**result, "nights": [asdict(m) | {"served_per_floor": m.served_per_floor}
                                               for m in result["nights"]]} for result in results]}
    (args.results_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (args.results_dir / f"{name}.md").write_text(md + "\n")
    print(f"\nresults: {args.results_dir / (name + '.json')} and {args.results_dir / (name + '.md')}")
    all_exact = all(m.check["correct"] and m.exit_code == 0 for result in results for m in result["nights"])
    if not all_exact:
        print("\n!!! a night was not exact (see above): its figures are not comparable", flush=True)
    return 0 if all_exact else 1


if __name__ == "__main__":
    sys.exit(main())
