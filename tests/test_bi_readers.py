"""The published file opens in the DuckDB engine a BI driver bundles, which is older than the product's own.

Metabase, Grafana, Evidence and Superset read the file through DuckDB 1.4 and 1.5 engines. The test runs such an
engine from the side environment that `make test` installs (`.venv-bi`, from requirements-bi.lock) as its own
process, against files published by real `unpod-runs load` processes.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import duckdb
import pytest

from conftest import REPO
from unpod_runs.analytics.models import load_models
from unpod_runs.pipeline.workspace import STORAGE_VERSION, Workspace

BI_PYTHON = REPO / ".venv-bi" / "bin" / "python"

# Run by the BI engine: every relation of both schemas read in full, each value rendered as text in the engine,
# so every column is decoded there and the Python client converts nothing.
READ_EVERY_RELATION = """
import json, sys
import duckdb

con = duckdb.connect(sys.argv[1], read_only=True)
relations = con.execute(
    "select table_schema || '.' || table_name from information_schema.tables"
    " where table_schema in ('analytics', 'unpod')"
).fetchall()
rows = {name: len(con.execute(f"select cast(columns(*) as varchar) from {name}").fetchall()) for (name,) in relations}
print(json.dumps({"version": duckdb.__version__, "rows": rows}))
"""


def read_with_bi_engine(db) -> dict:
    if not BI_PYTHON.exists():
        pytest.fail(
            f"no DuckDB 1.4 reader at {BI_PYTHON}: create it with `make .venv-bi/.installed` "
            "(`make test` does it first)"
        )
    result = subprocess.run(
        [str(BI_PYTHON), "-c", READ_EVERY_RELATION, str(db)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"DuckDB of {BI_PYTHON} could not read {db}:\n{result.stderr}"
    return json.loads(result.stdout)


def rows_per_relation(db) -> dict[str, int]:
    """The same counts through the product's own engine."""
    with duckdb.connect(str(db), read_only=True) as con:
        relations = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema in ('analytics', 'unpod')"
        ).fetchall()
        return {name: con.execute(f"select count(*) from {name}").fetchone()[0] for (name,) in relations}


def storage_version(db) -> str:
    with duckdb.connect() as con:
        con.execute(f"attach '{db}' as published (read_only)")
        return con.execute("select tags['storage_version'] from duckdb_databases() where database_name = 'published'").fetchone()[0]


def test_duckdb_1_4_reads_every_relation_of_the_published_file(load_env):
    result = load_env.cli("load")
    assert result.returncode == 0, result.stderr

    read = read_with_bi_engine(load_env.db)

    assert read["version"].startswith("1.4."), read["version"]
    assert read["rows"]["unpod.runs"] == len(load_env.world.truth())
    assert {model.relation for model in load_models()} <= set(read["rows"])
    assert read["rows"] == rows_per_relation(load_env.db)
    assert storage_version(load_env.db) == f"{STORAGE_VERSION}+"


@pytest.mark.usefixtures("after_night_one")
def test_a_working_copy_rebuilt_from_the_published_file_publishes_the_same_format(load_env):
    shutil.rmtree(Workspace.for_db(load_env.db).work_dir)
    load_env.world.advance(hours=24, seed=5)

    result = load_env.cli("load")
    assert result.returncode == 0, result.stderr

    read = read_with_bi_engine(load_env.db)
    assert read["rows"]["unpod.runs"] == len(load_env.world.truth())
    assert read["rows"] == rows_per_relation(load_env.db)
    assert storage_version(load_env.db) == f"{STORAGE_VERSION}+"
