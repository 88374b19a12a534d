"""The analyst notebooks run top to bottom, headless, against a database built from the simulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from conftest_analytics import add_load_history, add_spaces, add_status_history, create_runs_db, rows_from_truth, utc
from nbclient import NotebookClient

from unpod_runs.analytics.models import build_models
from unpod_runs.sandbox.world import World

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_start_here.ipynb", "02_failure_rates.ipynb", "03_durations.ipynb"]


@pytest.fixture(scope="module")
def analytics_db(tmp_path_factory) -> Path:
    """A database like the demo's: runs of a simulated organization, its spaces, the status history of four nightly
    loads (finishes bumped and silent), the models built."""
    world = World(seed=3, spaces=4, runs=800, skew=True, open_fraction=0.2)
    sightings = [(world.now, world.truth())]
    for night in range(3):
        world.advance(hours=24, seed=4 + night)
        sightings.append((world.now, world.truth()))
    path = tmp_path_factory.mktemp("notebooks") / "unpod_runs.duckdb"
    with create_runs_db(path, rows_from_truth(world.truth())) as con:
        add_status_history(con, sightings)
        add_spaces(con, [{"token": token, "name": world.space(token).get("name")} for token in world.space_tokens()])
        add_load_history(con, [{"load_id": "1", "started_at": utc("2026-11-28T02:00:00"),
                                "finished_at": utc("2026-11-28T02:00:20"), "outcome": "ok", "full_scan": False}])
        build_models(con)
    return path


@pytest.fixture
def kernel_env(tmp_path: Path, analytics_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `python3` kernel spec running this interpreter (so the kernel sees the same packages), first on the
    Jupyter path, and the notebooks pointed at the test database."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("UNPOD_RUNS_DB", str(analytics_db))
    monkeypatch.delenv("MPLBACKEND", raising=False)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name, kernel_env):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=60,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert errors == []
    warnings = [output["text"] for cell in notebook.cells for output in cell.get("outputs", [])
                if output.get("name") == "stderr"]
    assert warnings == [], warnings
    charts = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert charts, f"{name} drew no chart"


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_committed_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: a cell has outputs"
    source = "\n".join(cell.source for cell in notebook.cells)
    assert 'os.environ.get("UNPOD_RUNS_DB", "../build/demo/unpod_runs.duckdb")' in source
    assert "read_only=True" in source
