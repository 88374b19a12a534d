"""The scale benchmark's whole code path at a tiny size: its report has every figure, so it keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
