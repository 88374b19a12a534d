"""Benchmark unpod-runs against the obvious dlt implementation (benchmarks/baseline.py), on the bundled sandbox.

Default mode: serve a sandbox world (40 spaces, 40,000 runs, skewed sizes, 20 ms per request), then
  night 1: the product's `unpod-runs load` and the baseline, one after the other, on the same world;
  a night passes (POST /_sandbox/advance): about 1% of the runs are new or change status;
  night 2: both again, incrementally, on the same changed world.
For each night and implementation: wall seconds of the whole command, API requests counted by the server,
peak RSS of the process, its CPU seconds, the server's CPU seconds and the CPU that other processes on the
machine used meanwhile; the ratios product/baseline; and a check of both databases against the world's truth.

  --large                 1,000,000 runs, no latency, the product alone: runs per second into DuckDB end to end
  --sweep-page-size LIST  the product's night 1 + night 2 at each page size (a fresh, identical world each)
  --sweep-workers LIST    the same for the number of concurrent space workers
  --repeat N              the whole scenario N times on fresh identical worlds; medians are reported

Every implementation runs as its own child process (peak RSS from os.wait4 on its pid) in a private temporary
folder and working directory: the repository's .dlt/ and data/ are never read or written. Results go to
benchmarks/results/ as JSON and Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PIPELINES = REPO / "pipelines"
RESULTS = REPO / "benchmarks" / "results"
BASELINE = REPO / "benchmarks" / "baseline.py"
MIB = 1024 * 1024
TERMINAL = {"completed", "failed", "partially_completed"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_VERSION: dict = {}
RESULTS_NAME = ""

# The targets: ratios product/baseline measured in the same run, and absolute ones for --large.
TARGET_NIGHT1_WALL = 1 / 5
TARGET_NIGHT2_REQUESTS = 1 / 10
TARGET_NIGHT2_WALL = 1 / 10
TARGET_LARGE_RUNS_PER_S = 50_000
TARGET_LARGE_PEAK_MIB = 1.5 * 1024

# Lines of the product's log (stderr) that mark where its time goes: `event=phase name=...` and these.
PHASE_RE = re.compile(rb"event=phase name=(\w+)")
# The product's own summary line: the seconds it counts itself, from run_load's start (after the imports).
SUMMARY_RE = re.compile(rb"^unpod-runs load: [^,]*, ([0-9.]+) s")
# The baseline prints dlt's own step durations from its trace.
BASELINE_STEP_RE = re.compile(rb"^baseline step=(\w+) seconds=([0-9.]+)")
LOG_MARKS = ((b"models into schema", "models_built"), (b"data checks,", "checks_run"),
             (b"wrote the report", "report_written"))
PHASE_ORDER = ["start", "extract", "normalize", "load", "models", "models_built", "checks_run", "report_written",
               "publish", "exit"]
# Each segment is named after what happens between its mark and the next one present.
PHASE_NAMES = {"start": "startup+discover", "extract": "extract", "normalize": "normalize", "load": "load+history",
               "models": "models", "models_built": "checks", "checks_run": "report", "report_written": "-",
               "publish": "publish+exit"}


# ----------------------------------------------------------------------------------------------------------------
# The sandbox


class Sandbox:
    """`unpod-runs sandbox` in a child process, driven through its admin routes."""

    def __init__(self, spaces: int, runs: int, skew: bool, seed: int, latency_ms: float, workdir: Path):
        self.args = dict(spaces=spaces, runs=runs, skew=skew, seed=seed, latency_ms=latency_ms)
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.base_url = self.token = self.org = self.root = ""
        self.build_seconds = 0.0

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "Sandbox":
        a = self.args
        cmd = [sys.executable, "-m", "unpod_runs.cli", "sandbox", "--port", "0", "--seed", str(a["seed"]),
               "--spaces", str(a["spaces"]), "--runs", str(a["runs"]), "--latency-ms", str(a["latency_ms"])]
        if a["skew"]:
            cmd.append("--skew")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "sandbox.log", "wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, cwd=self.workdir, env=child_env({}))
        log.close()
        line = self.proc.stdout.readline().decode()
        if not line:
            self.proc.wait()
            raise SystemExit(f"bench: the sandbox did not start (exit {self.proc.returncode}); "
                             f"see {self.workdir / 'sandbox.log'}")
        self.build_seconds = time.monotonic() - started
        found = dict(re.findall(r"SOURCES__UNPOD__(BASE_URL|ORG_HANDLE|API_TOKEN)=(\S+)", line))
        self.base_url, self.org, self.token = found["BASE_URL"], found["ORG_HANDLE"], found["API_TOKEN"]
        self.root = self.base_url.split("/api/")[0]
        # Drain stdout so the sandbox never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def env(self) -> dict[str, str]:
        return {"SOURCES__UNPOD__BASE_URL": self.base_url, "SOURCES__UNPOD__ORG_HANDLE": self.org,
                "SOURCES__UNPOD__API_TOKEN": self.token}

    def admin(self, method: str, name: str, payload: dict | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{self.root}/_sandbox/{name}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def reset_counts(self) -> None:
        self.admin("POST", "reset_counts", {})

    def stats(self) -> dict:
        return self.admin("GET", "stats")

    def truth(self) -> dict:
        return self.admin("GET", "truth")

    def advance(self, **kwargs: Any) -> dict:
        return self.admin("POST", "advance", kwargs)

    def api(self, path: str, headers: dict | None = None) -> bytes:
        request = urllib.request.Request(self.base_url + path,
                                         headers={"Authorization": f"Token {self.token}", **(headers or {})})
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.read()

    def space_counts(self) -> dict[str, int]:
        """Runs per space, as the API counts them (one small request each)."""
        spaces = json.loads(self.api("spaces/", {"Org-Handle": self.org}))["data"]
        return {s["token"]: json.loads(self.api(f"spaces/{s['token']}/runs/?page=1&page_size=1"))["count"]
                for s in spaces}

    def warm_up(self) -> None:
        """Read every run once so the server's per-run JSON cache is full before anything is timed: neither
        implementation pays the simulator's first serialization. Counts are reset afterwards."""
        for token in self.space_counts():
            self.api(f"spaces/{token}/runs/?page_size=0")
        self.reset_counts()

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process so far."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot (every core), from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----------------------------------------------------------------------------------------------------------------
# One measured run of one implementation


@dataclass
class Measure:
    night: int
    impl: str
    wall_s: float
    requests: int
    peak_mib: float
    cpu_s: float
    server_cpu_s: float
    other_cpu_s: float
    exit_code: int
    requests_by_kind: dict = field(default_factory=dict)
    phases: dict = field(default_factory=dict)
    rows: int | None = None
    distinct_rows: int | None = None
    truth_rows: int | None = None
    missing: int | None = None
    extra: int | None = None
    stale_status: int | None = None
    correct: bool | None = None
    page_size: int | None = None
    workers: int | None = None
    reported_s: float | None = None
    wall_samples: list = field(default_factory=list)


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """A child's environment: ours without any dlt/unpod settings, plus `extra`.

    Every child is `sys.executable` (the interpreter bench.py runs under: `.venv/bin/python` for `make bench`,
    where the product is installed editable). pipelines/ goes first on the path only so that the checkout's own
    code is what gets measured, whatever else that interpreter has installed; nothing outside the repository
    is needed."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__", "NORMALIZE__", "LOAD__", "EXTRACT__",
                                "DATA_WRITER__", "DLT_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PIPELINES), os.environ.get("PYTHONPATH")) if p)
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_child(cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> tuple[float, int, float, float, dict]:
    """Run `cmd`; return (wall s, exit code, peak RSS MiB, CPU s, marks in s since start).

    Peak RSS and CPU come from os.wait4 on the child's own pid: its rusage alone, not every child's of this
    process. Each output line is stamped as it arrives, which times the product's phases to the millisecond."""
    marks: dict[str, float] = {}
    lines: list[bytes] = []
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def read() -> None:
        for line in proc.stdout:
            now = time.monotonic() - started
            lines.append(b"%8.3f " % now + line)
            summary = SUMMARY_RE.match(line)
            if summary:
                marks.setdefault("reported_s", float(summary.group(1)))
            step = BASELINE_STEP_RE.match(line)
            if step:
                marks[f"baseline:{step.group(1).decode()}"] = float(step.group(2))
            match = PHASE_RE.search(line)
            if match:
                marks.setdefault(match.group(1).decode(), now)
                continue
            for needle, name in LOG_MARKS:
                if needle in line:
                    marks.setdefault(name, now)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    log_path.write_bytes(b"".join(lines))
    marks["exit"] = wall
    return wall, proc.returncode, usage.ru_maxrss * 1024 / MIB, usage.ru_utime + usage.ru_stime, marks


def phase_durations(marks: dict[str, float]) -> dict[str, float]:
    """Seconds spent in each of the product's phases, from the stamped log lines."""
    points = {"start": 0.0, **{k: v for k, v in marks.items() if k in PHASE_ORDER}}
    present = [name for name in PHASE_ORDER if name in points]
    return {PHASE_NAMES[a]: round(points[b] - points[a], 3) for a, b in zip(present, present[1:])
            if PHASE_NAMES[a] != "-"}


class Runner:
    """Runs the implementations against one sandbox, each in its own folder, and measures them."""

    def __init__(self, sandbox: Sandbox, workdir: Path, page_size: int | None = None, workers: int | None = None,
                 profile: str | None = None):
        self.sandbox = sandbox
        self.workdir = workdir
        self.page_size = page_size
        self.workers = workers
        self.profile = profile

    def db(self, impl: str) -> Path:
        return self.workdir / impl / f"{impl}.duckdb"

    def command(self, impl: str, night: int) -> tuple[list[str], dict[str, str]]:
        folder = self.workdir / impl
        folder.mkdir(parents=True, exist_ok=True)
        env = {**self.sandbox.env(), "DLT_DATA_DIR": str(folder / "dlt")}
        if impl == "baseline":
            return [sys.executable, str(BASELINE), "--db", str(self.db(impl))], env
        if self.page_size:
            env["SOURCES__UNPOD__PAGE_SIZE"] = str(self.page_size)
        if self.workers:
            env["SOURCES__UNPOD__WORKERS"] = str(self.workers)
        prefix = [sys.executable]
        if self.profile:
            # cProfile sees the main thread only: dlt's extract, normalize and load, the models, report, publish.
            RESULTS.mkdir(parents=True, exist_ok=True)
            prefix += ["-m", "cProfile", "-o", str(RESULTS / f"{self.profile}-product-night{night}.prof")]
        return prefix + ["-m", "unpod_runs.cli", "load", "--db", str(self.db(impl))], env

    def measure(self, impl: str, night: int) -> Measure:
        cmd, env = self.command(impl, night)
        self.sandbox.reset_counts()
        server_before, busy_before, self_before = self.sandbox.cpu_seconds(), machine_busy_seconds(), self_cpu_seconds()
        wall, code, peak, cpu, marks = run_child(cmd, child_env(env), self.workdir / impl,
                                                 self.workdir / f"{impl}-night{night}.log")
        server = self.sandbox.cpu_seconds() - server_before
        other = machine_busy_seconds() - busy_before - cpu - server - (self_cpu_seconds() - self_before)
        stats = self.sandbox.stats()
        phases = phase_durations(marks) if impl == "product" else {
            name.split(":", 1)[1]: round(value, 3) for name, value in marks.items() if name.startswith("baseline:")}
        m = Measure(night, impl, round(wall, 3), stats["total"], round(peak, 1), round(cpu, 2), round(server, 2),
                    round(max(0.0, other), 2), code, stats["by_kind"], phases)
        m.page_size, m.workers = effective_settings(self.page_size, self.workers) if impl == "product" else (50, 1)
        m.reported_s = marks.get("reported_s")
        m.wall_samples = [m.wall_s]
        print(f"  night {night} {impl:<8} {m.wall_s:8.2f} s {m.requests:6d} requests {m.peak_mib:7.0f} MiB peak"
              f"  {m.cpu_s:6.1f} CPU s  (others used {m.other_cpu_s:.1f} CPU s)  exit {code}", flush=True)
        if code != 0:
            tail = (self.workdir / f"{impl}-night{night}.log").read_text(errors="replace").splitlines()[-15:]
            print(f"  !!! {impl} night {night} exited {code}:\n    " + "\n    ".join(tail), flush=True)
        return m


def effective_settings(page_size: int | None, workers: int | None) -> tuple[int, int]:
    """The page size and workers the product runs with: the override, else its defaults (no .dlt/ is read)."""
    if str(PIPELINES) not in sys.path:
        sys.path.insert(0, str(PIPELINES))
    from unpod_runs.pipeline import config

    return page_size or config.DEFAULT_PAGE_SIZE, workers or config.DEFAULT_WORKERS


# ----------------------------------------------------------------------------------------------------------------
# Correctness against the world's truth


def verify(m: Measure, db: Path, truth: dict | None, expected_rows: int) -> None:
    """Fill in the row counts of `m` and whether its database matches the world; shout when it does not.

    `truth` (run_id -> run) also checks ids and statuses; without it only the counts are compared."""
    import duckdb

    m.truth_rows = expected_rows
    if not db.exists():
        m.correct = False
        print(f"  !!! MISMATCH {m.impl} night {m.night}: no database at {db}", flush=True)
        return
    with duckdb.connect(str(db), read_only=True) as con:
        m.rows, m.distinct_rows = con.execute("select count(*), count(distinct run_id) from unpod.runs").fetchone()
        stored = dict(con.execute("select run_id, status from unpod.runs").fetchall()) if truth is not None else None
    if truth is not None:
        m.missing = sum(1 for run_id in truth if run_id not in stored)
        m.extra = sum(1 for run_id in stored if run_id not in truth)
        m.stale_status = sum(1 for run_id, run in truth.items()
                             if run_id in stored and stored[run_id] != run.get("status"))
    m.correct = m.rows == m.distinct_rows == expected_rows and not m.missing and not m.extra
    if not m.correct:
        print(f"  !!! MISMATCH {m.impl} night {m.night}: {m.rows} rows ({m.distinct_rows} distinct), the world has "
              f"{expected_rows}; missing {m.missing}, extra {m.extra}", flush=True)
    if m.impl == "product" and m.stale_status:
        print(f"  !!! MISMATCH product night {m.night}: {m.stale_status} runs with a status the API no longer shows",
              flush=True)


def all_correct(measures: list[Measure]) -> bool:
    return all(m.correct and m.exit_code == 0 and not (m.impl == "product" and m.stale_status) for m in measures)


# ----------------------------------------------------------------------------------------------------------------
# Scenarios


def night_change(sandbox: Sandbox, truth: dict, share: float, seed: int) -> dict:
    """A night passes with about `share` of the runs new or changed: half new runs, half open runs finishing
    (about half of those without a `modified` bump, as the world does)."""
    target = max(2, round(share * len(truth)))
    open_runs = sum(1 for run in truth.values() if run.get("status") not in TERMINAL)
    finish_fraction = min(1.0, (target // 2) / open_runs) if open_runs else 0.0
    night = sandbox.advance(hours=24, new_runs=target - target // 2, finish_fraction=finish_fraction, seed=seed)
    return {"new": len(night["new"]), "changed": len(night["changed"])}


def two_nights(args: argparse.Namespace, workdir: Path, impls: list[str], latency: float, runs: int,
               page_size: int | None, workers: int | None, profile: str | None) -> dict:
    """Night 1 for each implementation, a night passes, night 2 for each: all on one world."""
    with Sandbox(args.spaces, runs, args.skew, args.seed, latency, workdir) as sandbox:
        sandbox.warm_up()
        runner = Runner(sandbox, workdir, page_size, workers, profile)
        truth = sandbox.truth()
        open_runs = sum(1 for run in truth.values() if run.get("status") not in TERMINAL)
        print(f"night 1: {len(truth)} runs, {open_runs} open (world built in {sandbox.build_seconds:.1f} s)",
              flush=True)
        measures = []
        for impl in impls:
            m = runner.measure(impl, 1)
            verify(m, runner.db(impl), truth, len(truth))
            measures.append(m)
        changed = night_change(sandbox, truth, args.change_share, args.seed + 1)
        truth = sandbox.truth()
        print(f"a night passes: {changed['new']} new runs, {changed['changed']} runs change status "
              f"({(changed['new'] + changed['changed']) / len(truth):.2%} of {len(truth)})\nnight 2:", flush=True)
        for impl in impls:
            m = runner.measure(impl, 2)
            verify(m, runner.db(impl), truth, len(truth))
            measures.append(m)
    return {"measures": measures, "changed": changed, "build_s": round(sandbox.build_seconds, 2),
            "runs_night1": len(truth) - changed["new"], "runs_night2": len(truth)}


def median_measures(repeats: list[list[Measure]]) -> list[Measure]:
    """Per position, the median of every timing over the repeats (counts must agree; correctness must hold in all)."""
    if len(repeats) == 1:
        return repeats[0]
    merged = []
    for same in zip(*repeats):
        m = Measure(**{f.name: getattr(same[0], f.name) for f in fields(Measure)})
        for name in ("wall_s", "peak_mib", "cpu_s", "server_cpu_s", "other_cpu_s"):
            setattr(m, name, round(statistics.median(getattr(x, name) for x in same), 3))
        if all(x.reported_s is not None for x in same):
            m.reported_s = round(statistics.median(x.reported_s for x in same), 3)
        m.requests = statistics.median_low(x.requests for x in same)
        m.wall_samples = [x.wall_s for x in same]
        m.phases = {k: round(statistics.median(x.phases.get(k, 0.0) for x in same), 3) for k in same[0].phases}
        m.correct = all(x.correct for x in same)
        m.exit_code = max(x.exit_code for x in same)
        m.stale_status = max((x.stale_status or 0) for x in same) if same[0].stale_status is not None else None
        merged.append(m)
    return merged


# ----------------------------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict:
    cpu, mem = "unknown", None
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        mem = round(int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemTotal"))) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in ("dlt", "duckdb", "pyarrow", "orjson", "requests"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "memory_gib": mem, "os": platform.platform(),
            "python": platform.python_version(), "load_average_at_start": os.getloadavg()[0], **versions}


def product_version() -> dict:
    """The commit measured, and the product files that differed from it (read-only git calls)."""
    def git(*command: str) -> str:
        try:
            return subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), *command], capture_output=True,
                                  text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "pipelines", "sql").splitlines() if line]
    version = {"commit": git("rev-parse", "--short", "HEAD").strip() or "unknown", "uncommitted": changed,
               "fingerprint": product_fingerprint()}
    if START_VERSION:
        version["at_start"] = START_VERSION["commit"]
        version["changed_during_run"] = START_VERSION["fingerprint"] != version["fingerprint"]
    return version


def product_fingerprint() -> str:
    """Names, sizes and modification times of the product's files: changes whether committed or not."""
    entries = []
    for folder in (PIPELINES / "unpod_runs", REPO / "sql"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                entries.append(f"{path.relative_to(REPO)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("\n".join(entries).encode()).hexdigest()[:12]


def machine_line(info: dict) -> str:
    return (f"{info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB RAM, {info['os']}, "
            f"Python {info['python']}, dlt {info['dlt']}, duckdb {info['duckdb']}, pyarrow {info['pyarrow']}")


def version_line(version: dict) -> str:
    dirty = f", with uncommitted changes to {', '.join(version['uncommitted'])}" if version["uncommitted"] else ""
    line = f"Product at commit {version['commit']}{dirty}."
    if version.get("changed_during_run"):
        line += (f" WARNING: the product changed while the benchmark ran (it started at {version['at_start']}): "
                 "the figures may mix versions; rerun.")
    return line


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    if not value:
        return "0"
    return f"{value:.3f} (1/{1 / value:.1f})" if value < 1 else f"{value:.3f} ({value:.1f}x)"


def verdict(value: float | None, target: float) -> str:
    return "n/a" if value is None else ("PASS" if value <= target else "MISS")


def table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def measures_table(measures: list[Measure]) -> str:
    rows = []
    for m in measures:
        check = "ok" if m.correct and m.exit_code == 0 else f"MISMATCH (exit {m.exit_code})"
        if m.stale_status:
            check += f", {m.stale_status} stale statuses"
        rows.append([m.night, m.impl, f"{m.wall_s:.2f}", m.requests, f"{m.peak_mib:.0f}", f"{m.cpu_s:.1f}",
                     f"{m.server_cpu_s:.1f}", f"{m.other_cpu_s:.1f}", f"{m.rows}/{m.truth_rows}", check])
    return table(["night", "implementation", "wall s", "requests", "peak MiB", "CPU s", "server CPU s",
                  "others' CPU s", "runs stored/world", "check"], rows)


def baseline_steps_table(measures: list[Measure]) -> str:
    baseline = [m for m in measures if m.impl == "baseline" and m.phases]
    if not baseline:
        return ""
    rows = [[f"night {m.night}"] + [f"{m.phases.get(n, 0):.2f}" for n in ("extract", "normalize", "load")]
            + [f"{m.wall_s:.2f}"] for m in baseline]
    return ("Where the baseline's wall time goes (s, dlt's own trace; extract includes every request):\n\n"
            + table(["baseline", "extract", "normalize", "load", "total"], rows))


def phases_table(measures: list[Measure], label=None) -> str:
    product = [m for m in measures if m.impl == "product" and m.phases]
    if not product:
        return ""
    names = list(dict.fromkeys(name for m in product for name in m.phases))
    label = label or (lambda m: f"night {m.night}")
    rows = [[label(m)] + [f"{m.phases.get(n, 0):.2f}" for n in names] + [f"{m.wall_s:.2f}"]
            + [f"{m.reported_s:.1f}" if m.reported_s is not None else "-"] for m in product]
    return ("Where the product's wall time goes (s, from its stamped log lines; \"own count\" is the time its "
            "summary line reports, which leaves out the interpreter's start, the imports and the exit):\n\n"
            + table(["product"] + names + ["total", "own count"], rows))


def contention_note(measures: list[Measure]) -> str:
    busy = [m for m in measures if m.other_cpu_s > 0.1 * m.wall_s]
    if not busy:
        return "Other processes used less than 10% of a core during every measurement."
    worst = max(busy, key=lambda m: m.other_cpu_s / m.wall_s)
    return (f"WARNING: other processes competed for the CPU during {len(busy)} of {len(measures)} measurements "
            f"(at worst {worst.other_cpu_s:.1f} CPU s during the {worst.wall_s:.1f} s of night {worst.night} "
            f"{worst.impl}): timings of CPU-bound steps are pessimistic; rerun on an idle machine.")


def settings_suffix(args: argparse.Namespace) -> str:
    """Results of non-default product settings or worlds go to their own files, beside the default ones."""
    parts = [f"-ps{args.page_size}" if args.page_size else "", f"-w{args.workers}" if args.workers else ""]
    if args.runs or args.latency_ms is not None or args.spaces != 40 or not args.skew or args.seed != 42:
        parts.append("-custom")
    return "".join(parts)


def write_results(name: str, payload: dict, markdown: str, profiling: bool) -> None:
    if RESULTS_NAME:
        name = RESULTS_NAME
    if profiling:
        name += "-profiled"  # profiled timings are slower: never mistaken for the benchmark's
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown + "\n")
    print(f"\nresults: {RESULTS / (name + '.json')} and {RESULTS / (name + '.md')}")


def header(args: argparse.Namespace, title: str) -> str:
    command = "python benchmarks/bench.py " + " ".join(args.argv)
    return f"## {title}\n\n`{command.strip()}` at {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"


# ----------------------------------------------------------------------------------------------------------------
# Modes


def default_mode(args: argparse.Namespace, workdir: Path) -> int:
    latency = 20.0 if args.latency_ms is None else args.latency_ms
    runs = args.runs or 40_000
    impls = ["baseline", "product"] if args.baseline_first else ["product", "baseline"]
    print(f"world: {args.spaces} spaces, {runs} runs{' (skewed)' if args.skew else ''}, seed {args.seed}, "
          f"{latency:g} ms per request", flush=True)
    outcomes = []
    for repeat in range(args.repeat):
        if args.repeat > 1:
            print(f"repeat {repeat + 1} of {args.repeat}", flush=True)
        outcomes.append(two_nights(args, workdir / f"repeat{repeat}", impls, latency, runs, args.page_size,
                                   args.workers, "bench" if args.profile else None))
    measures = median_measures([o["measures"] for o in outcomes])
    first = outcomes[0]
    by = {(m.night, m.impl): m for m in measures}
    ratios = {night: {"wall": ratio(by[(night, "product")].wall_s, by[(night, "baseline")].wall_s),
                      "requests": ratio(by[(night, "product")].requests, by[(night, "baseline")].requests),
                      "peak_mib": ratio(by[(night, "product")].peak_mib, by[(night, "baseline")].peak_mib),
                      "cpu": ratio(by[(night, "product")].cpu_s, by[(night, "baseline")].cpu_s)}
              for night in (1, 2)}
    targets = [("night 1 wall time", ratios[1]["wall"], TARGET_NIGHT1_WALL),
               ("night 2 requests", ratios[2]["requests"], TARGET_NIGHT2_REQUESTS),
               ("night 2 wall time", ratios[2]["wall"], TARGET_NIGHT2_WALL)]
    info, version = machine(), product_version()
    product = by[(1, "product")]
    md = "\n\n".join([
        header(args, "unpod-runs against the obvious dlt implementation"),
        f"World: {args.spaces} spaces, {first['runs_night1']:,} runs{' (skewed sizes)' if args.skew else ''}, "
        f"seed {args.seed}, {latency:g} ms per request. Night 2 after {first['changed']['new']} new runs and "
        f"{first['changed']['changed']} status changes. Product: `unpod-runs load`, page size {product.page_size}, "
        f"{product.workers} workers. Baseline: `benchmarks/baseline.py` (dlt rest_api_source, 50 runs a page)."
        + (f" Medians of {args.repeat} repeats on identical worlds." if args.repeat > 1 else ""),
        measures_table(measures),
        "Ratios product/baseline:\n\n" + table(
            ["night", "wall", "requests", "peak memory", "CPU"],
            [[n, fmt_ratio(r["wall"]), fmt_ratio(r["requests"]), fmt_ratio(r["peak_mib"]), fmt_ratio(r["cpu"])]
             for n, r in ratios.items()]),
        "Targets:\n\n" + table(["target", "product/baseline", "at most", "verdict"],
                                [[t, fmt_ratio(v), f"{lim:.2f}", verdict(v, lim)] for t, v, lim in targets]),
        phases_table(measures),
        baseline_steps_table(measures),
        contention_note(measures),
        f"Machine: {machine_line(info)}. {version_line(version)}",
    ])
    print("\n" + md)
    write_results("bench" + settings_suffix(args), {
        "mode": "default", "argv": args.argv, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": info, "product_version": version,
        "world": {"spaces": args.spaces, "runs": runs, "skew": args.skew, "seed": args.seed, "latency_ms": latency,
                  "night2": first["changed"], "build_s": first["build_s"]},
        "repeats": args.repeat, "measures": [asdict(m) for m in measures], "ratios": ratios,
        "targets": [{"name": t, "ratio": v, "at_most": lim, "pass": v is not None and v <= lim}
                    for t, v, lim in targets],
        "all_repeats": [[asdict(m) for m in o["measures"]] for o in outcomes] if args.repeat > 1 else None,
    }, md, args.profile)
    if not all_correct(measures):
        print("\n!!! correctness problems above: the figures are not comparable", flush=True)
        return 1
    return 0


def large_mode(args: argparse.Namespace, workdir: Path) -> int:
    latency = 0.0 if args.latency_ms is None else args.latency_ms
    runs = args.runs or 1_000_000
    print(f"world: {args.spaces} spaces, {runs:,} runs{' (skewed)' if args.skew else ''}, seed {args.seed}, "
          f"{latency:g} ms per request; the product alone", flush=True)
    samples, build = [], 0.0
    for repeat in range(args.repeat):
        folder = workdir / f"repeat{repeat}"
        with Sandbox(args.spaces, runs, args.skew, args.seed, latency, folder) as sandbox:
            build = sandbox.build_seconds
            warm = time.monotonic()
            sandbox.warm_up()
            expected = sum(sandbox.space_counts().values())
            print(f"  world built in {build:.1f} s, server cache warmed in {time.monotonic() - warm:.1f} s",
                  flush=True)
            runner = Runner(sandbox, folder, args.page_size, args.workers, "bench-large" if args.profile else None)
            m = runner.measure("product", 1)
            verify(m, runner.db("product"), None, expected)
            samples.append([m])
    m = median_measures(samples)[0]
    rate = (m.rows or 0) / m.wall_s
    info, version = machine(), product_version()
    targets = [["runs per second", f"{rate:,.0f}", f">= {TARGET_LARGE_RUNS_PER_S:,}",
                "PASS" if rate >= TARGET_LARGE_RUNS_PER_S else "MISS"],
               ["peak memory", f"{m.peak_mib:,.0f} MiB", f"< {TARGET_LARGE_PEAK_MIB:,.0f} MiB",
                "PASS" if m.peak_mib < TARGET_LARGE_PEAK_MIB else "MISS"]]
    md = "\n\n".join([
        header(args, "unpod-runs at a million runs"),
        f"World: {args.spaces} spaces, {expected:,} runs{' (skewed sizes)' if args.skew else ''}, seed {args.seed}, "
        f"{latency:g} ms per request, built in {build:.1f} s. The product alone, night 1 (`unpod-runs load`, "
        f"the whole command: extract, load, models, checks, report, publish), page size {m.page_size}, "
        f"{m.workers} workers." + (f" Medians of {args.repeat} repeats." if args.repeat > 1 else ""),
        table(["runs stored", "wall s", "runs/s", "requests", "peak MiB", "CPU s", "server CPU s", "others' CPU s",
               "check"],
              [[f"{m.rows:,}" if m.rows is not None else "-", f"{m.wall_s:.2f}", f"{rate:,.0f}", m.requests,
                f"{m.peak_mib:,.0f}", f"{m.cpu_s:.1f}", f"{m.server_cpu_s:.1f}", f"{m.other_cpu_s:.1f}",
                "ok" if m.correct and m.exit_code == 0 else "MISMATCH"]]),
        "Targets:\n\n" + table(["target", "measured", "wanted", "verdict"], targets),
        phases_table([m]),
        contention_note([m]),
        f"Machine: {machine_line(info)}. {version_line(version)}",
    ])
    print("\n" + md)
    write_results("bench-large" + settings_suffix(args), {
        "mode": "large", "argv": args.argv, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": info, "product_version": version,
        "world": {"spaces": args.spaces, "runs": expected, "skew": args.skew, "seed": args.seed,
                  "latency_ms": latency, "build_s": round(build, 2)},
        "repeats": args.repeat, "measure": asdict(m), "runs_per_s": round(rate), "targets": targets,
    }, md, args.profile)
    return 0 if all_correct([m]) else 1


def sweep_mode(args: argparse.Namespace, workdir: Path) -> int:
    latency = 20.0 if args.latency_ms is None else args.latency_ms
    runs = args.runs or 40_000
    settings = [(size, count) for size in (args.sweep_page_size or [args.page_size])
                for count in (args.sweep_workers or [args.workers])]
    print(f"world: {args.spaces} spaces, {runs} runs{' (skewed)' if args.skew else ''}, seed {args.seed}, "
          f"{latency:g} ms per request; the product alone, a fresh identical world per setting", flush=True)
    results = []
    for size, count in settings:
        page_size, workers = effective_settings(size, count)
        outcomes = []
        for repeat in range(args.repeat):
            print(f"page size {page_size}, {workers} workers" + (f", repeat {repeat + 1}" if args.repeat > 1 else ""),
                  flush=True)
            outcomes.append(two_nights(args, workdir / f"ps{page_size}-w{workers}-{repeat}", ["product"], latency,
                                       runs, size, count, None)["measures"])
        results.append(median_measures(outcomes))
    rows = [[a.page_size, a.workers, f"{a.wall_s:.2f}", a.requests, f"{a.cpu_s:.1f}", f"{b.wall_s:.2f}", b.requests,
             f"{b.cpu_s:.1f}", f"{max(a.peak_mib, b.peak_mib):.0f}", "ok" if all_correct([a, b]) else "MISMATCH"]
            for a, b in results]
    info, version = machine(), product_version()
    flat = [m for pair in results for m in pair]
    md = "\n\n".join([
        header(args, "unpod-runs: page size and workers"),
        f"World: {args.spaces} spaces, {runs:,} runs{' (skewed sizes)' if args.skew else ''}, seed {args.seed}, "
        f"{latency:g} ms per request; night 2 after ~{args.change_share:.0%} of the runs are new or changed. "
        f"The product alone, on a fresh identical world per setting."
        + (f" Medians of {args.repeat} repeats." if args.repeat > 1 else ""),
        table(["page size", "workers", "night 1 wall s", "night 1 requests", "night 1 CPU s", "night 2 wall s",
               "night 2 requests", "night 2 CPU s", "peak MiB", "check"], rows),
        phases_table(flat, lambda m: f"night {m.night}, {m.page_size}/page, {m.workers} workers"),
        contention_note(flat),
        f"Machine: {machine_line(info)}. {version_line(version)}",
    ])
    print("\n" + md)
    name = "bench-sweep" + ("-page-size" if args.sweep_page_size else "") + ("-workers" if args.sweep_workers else "")
    name += "-custom" if settings_suffix(args).endswith("-custom") else ""
    write_results(name, {
        "mode": "sweep", "argv": args.argv, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": info, "product_version": version,
        "world": {"spaces": args.spaces, "runs": runs, "skew": args.skew, "seed": args.seed, "latency_ms": latency},
        "repeats": args.repeat, "measures": [asdict(m) for m in flat],
    }, md, args.profile)
    return 0 if all_correct(flat) else 1


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="1,000,000 runs, no latency, the product alone")
    parser.add_argument("--sweep-page-size", type=int_list, metavar="LIST",
                        help="the product's nights 1 and 2 at each page size, e.g. 100,250,500,1000,2000")
    parser.add_argument("--sweep-workers", type=int_list, metavar="LIST",
                        help="the product's nights 1 and 2 at each number of workers, e.g. 1,2,4,8")
    parser.add_argument("--latency-ms", type=float, help="delay per API request (default 20; 0 with --large)")
    parser.add_argument("--spaces", type=positive, default=40, help="spaces in the world (default %(default)s)")
    parser.add_argument("--runs", type=positive, help="runs in the world (default 40,000; 1,000,000 with --large)")
    parser.add_argument("--even", dest="skew", action="store_false", help="even space sizes (default: skewed)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the world (default %(default)s)")
    parser.add_argument("--page-size", type=positive, help="the product's page size (SOURCES__UNPOD__PAGE_SIZE)")
    parser.add_argument("--workers", type=positive, help="the product's concurrent spaces (SOURCES__UNPOD__WORKERS)")
    parser.add_argument("--change-share", type=float, default=0.01,
                        help="share of the runs new or changed before night 2 (default %(default)s)")
    parser.add_argument("--repeat", type=positive, default=1,
                        help="run everything N times on fresh identical worlds and report medians (default 1)")
    parser.add_argument("--baseline-first", action="store_true", help="run the baseline before the product each night")
    parser.add_argument("--profile", action="store_true",
                        help="run the product under cProfile (main thread); .prof files go to benchmarks/results/")
    parser.add_argument("--results-name", metavar="NAME",
                        help="write benchmarks/results/NAME.json and NAME.md (default: named after the mode)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, logs)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    START_VERSION.update(product_version())
    global RESULTS_NAME
    RESULTS_NAME = args.results_name or ""
    workdir = Path(tempfile.mkdtemp(prefix="unpod-bench-"))
    try:
        if args.sweep_page_size or args.sweep_workers:
            return sweep_mode(args, workdir)
        if args.large:
            return large_mode(args, workdir)
        return default_mode(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
