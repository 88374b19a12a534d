"""What the product keeps between loads does not grow with the number of loads, only with the runs stored."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conftest import LoadEnv
from unpod_runs.pipeline.load import STATE_ROWS_KEPT, run_load
from unpod_runs.pipeline.workspace import Workspace

MIB = 1024 * 1024


def bytes_under(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())


@pytest.mark.usefixtures("after_night_one")
def test_quiet_nights_keep_the_same_bytes_and_prune_what_dlt_would_keep(load_env: LoadEnv, tmp_path: Path):
    workspace = Workspace.for_db(load_env.db)
    dlt_dir = tmp_path / "dlt"
    kept = []
    for night in range(10):
        if night:  # the first night is the template's
            load_env.world.advance(hours=24, new_runs=1, finish_fraction=0.2)
            summary = run_load(load_env.db)
            assert summary.exit_code == 0, summary.render()
        kept.append(bytes_under(load_env.db) + bytes_under(workspace.work_dir) + bytes_under(dlt_dir))
        assert not workspace.work_db.exists(), "a second copy of the database is kept between loads"

    # DuckDB reuses the blocks that a night frees, but which night reuses them depends on how its threads wrote the
    # night's rows: a copy can take a few 256 KiB blocks one night and give them back the next (two or more in a
    # suite run beside other tests). What must not happen is a size that keeps rising: the swing stays bounded and
    # the last nights are no bigger than the first ones.
    steady = kept[2:]
    assert max(steady) - min(steady) <= 2 * MIB, kept
    assert min(steady[-3:]) <= min(steady[:3]) + MIB // 2, kept
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        states = con.execute("select count(*) from unpod._dlt_pipeline_state").fetchone()[0]
        staged = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'unpod_staging' and table_name not like '\\_dlt%' escape '\\'"
        ).fetchall()
        staged_rows = sum(con.execute(f"select count(*) from unpod_staging.{name}").fetchone()[0] for (name,) in staged)
    assert states == STATE_ROWS_KEPT
    assert staged_rows == 0, "the staging copy of the merged rows is published"
    assert not list(dlt_dir.glob("pipelines/*/load/loaded/*")), "loaded packages are kept"
