"""The scale benchmark's whole code path at a tiny size: its report has every figure, so it keeps working."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from unpod_runs.sandbox.world import TERMINAL_STATUSES

REPO = Path(__file__).resolve().parents[1]
PHASES = {"startup", "extract", "normalize", "load", "models", "checks", "report", "publish"}


def test_scale_benchmark_reports_every_figure(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SOURCES__", "DLT_"))}
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--sizes", "2000", "--quiet-nights", "1",
         "--spaces", "5", "--results-dir", str(tmp_path), "--results-name", "scale"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    [size] = json.loads((tmp_path / "scale.json").read_text())["sizes"]
    assert size["runs"] == size["world"]["runs"] == 2000
    assert 0 < size["world"]["stuck_open"] < size["world"]["open"]
    first, quiet = size["nights"]
    assert first["floor"] == 2000
    assert quiet["change"] == {"new": 2, "finished_bumped": 1, "finished_unbumped": 1}
    # The floor from the world's truth: the runs open at night 1 (as built) and the new ones.
    assert quiet["floor"] == size["world"]["open"] + 2
    for night in (first, quiet):
        assert night["exit_code"] == 0 and night["check"]["correct"], night["check"]
        assert night["runs_served"] >= night["floor"] and night["requests"] > 0
        assert set(night["phases"]) >= PHASES and all(seconds >= 0 for seconds in night["phases"].values())
        assert night["peak_mib"] > 0 and night["cpu_s"] > 0
        disk = night["disk"]
        assert disk["published"] > 0 and disk["working"] > 0 and disk["dlt"] > 0
        assert disk["total"] == disk["published"] + disk["working"] + disk["dlt"]
    assert quiet["growth_bytes"] == quiet["disk"]["total"] - first["disk"]["total"]
    verdicts = {target["name"].split(": ", 1)[1].split(" ")[0]: target["pass"] for target in size["targets"]}
    assert set(verdicts) == {"exact", "runs", "requests", "wall", "bytes"}
    assert all(isinstance(passed, bool) for passed in verdicts.values())

    report = (tmp_path / "scale.md").read_text()
    for figure in ("runs served", "floor", "requests", "peak MiB", "published MiB", "working MiB", "dlt MiB",
                   "growth MiB", "Targets", *PHASES):
        assert figure in report


@pytest.fixture
def scale_sandbox(monkeypatch: pytest.MonkeyPatch):
    """benchmarks/scale_sandbox.py as a module (benchmarks/ is not a package), registered for this test only."""
    spec = importlib.util.spec_from_file_location("scale_sandbox", REPO / "benchmarks" / "scale_sandbox.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_check_and_the_floor_see_what_a_load_got_wrong_or_must_read(scale_sandbox, tmp_path: Path) -> None:
    world = scale_sandbox.CountingWorld(seed=3, spaces=2, runs=300, open_fraction=0.1)
    service = scale_sandbox.Service(world, server=None)
    states = world.states()
    db = tmp_path / "runs.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema unpod")
        con.execute("create table unpod.runs (run_id text, status text, modified timestamptz)")
        con.executemany("insert into unpod.runs values (?, ?, ?::timestamp at time zone 'UTC')",
                        list(zip(states["run_id"], states["status"], states["modified"])))
    assert service.check(str(db))["correct"]

    service.mark_loaded()
    opened = len(service.last_load.open_ids)
    changed = service.quiet_night(share=0.02, seed=1)
    assert changed == {"new": 3, "finished_bumped": 2, "finished_unbumped": 1}
    assert service.floor() == opened + 3
    finished_long_ago = next(run_id for run_id, status in zip(states["run_id"], states["status"])
                             if status in TERMINAL_STATUSES)
    with duckdb.connect(str(db)) as con:
        con.execute("update unpod.runs set status = 'running' where run_id = ?", [finished_long_ago])
    check = service.check(str(db))
    assert not check["correct"]
    assert (check["missing"], check["extra"], check["rows"]) == (3, 0, 300)
    # The three finished tonight (two with a new `modified`, one without) and the one stored wrong.
    assert check["stale"] == 4
