"""Each fact has one home: what the SQL says about statuses and the run schema is what Python says, and the exit
codes are documented as the command defines them."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from conftest import REPO, LoadEnv
from unpod_runs.cli import build_parser
from unpod_runs.analytics.models import load_models
from unpod_runs.pipeline.load import run_load
from unpod_runs.pipeline.outcomes import EXIT_CODES, EXIT_OK
from unpod_runs.pipeline.records import RUNS_SCHEMA
from unpod_runs.statuses import FAILED_STATUS, KNOWN_STATUSES, OPEN_STATUSES, PHASES, TERMINAL_STATUSES
from unpod_runs.pipeline.workspace import PublishFailed, Workspace


def model_query(name: str) -> str:
    return next(model.query for model in load_models() if model.name == name)


def test_the_sql_status_list_and_phases_are_the_python_ones():
    with duckdb.connect() as con:
        rows = con.execute(
            f"select status, is_terminal, is_failed, phase from ({model_query('stg_known_statuses')})"
        ).fetchall()
    assert sorted(status for status, _, _, _ in rows) == sorted(KNOWN_STATUSES)
    assert sorted(status for status, terminal, _, _ in rows if terminal) == sorted(TERMINAL_STATUSES)
    assert [status for status, _, failed, _ in rows if failed] == [FAILED_STATUS]
    assert {status: phase for status, _, _, phase in rows if phase is not None} == PHASES
    assert set(PHASES) == set(OPEN_STATUSES)


def test_the_staging_contract_of_runs_is_the_run_schema():
    """stg_runs fills a column dlt has not created with NULL, typed as the loader writes it."""
    contract = re.search(r"runs_contract as \((.*?)\n\),", model_query("stg_runs"), re.DOTALL).group(1)
    with duckdb.connect() as con:
        con.register("run_schema", RUNS_SCHEMA.empty_table())
        written = [(name, kind) for name, kind, *_ in con.execute("describe select * from run_schema").fetchall()]
        declared = [(name, kind) for name, kind, *_ in con.execute(f"describe {contract}").fetchall()]
    assert declared == written


def test_the_exit_codes_are_documented_as_the_command_defines_them():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("Exit codes of `load`"):readme.index("### Error messages")]
    assert [int(code) for code in re.findall(r"^\| (\d) \|", table, re.MULTILINE)] == list(EXIT_CODES)
    epilog = " ".join(build_parser(["load"])._subparsers._group_actions[0].choices["load"].epilog.split())
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning}" in epilog


@pytest.mark.usefixtures("after_night_one")
def test_a_load_whose_publish_failed_is_not_ok_in_the_history_it_publishes_later(load_env: LoadEnv):
    published = load_env.db.read_bytes()
    Workspace.for_db(load_env.db).prepare()  # a working copy to load into, as a night that did not publish leaves it
    load_env.db.unlink()
    load_env.db.mkdir()  # a rename cannot replace a directory
    with pytest.raises(PublishFailed):
        run_load(load_env.db)
    shutil.rmtree(load_env.db)
    load_env.db.write_bytes(published)

    assert run_load(load_env.db).exit_code == EXIT_OK

    with duckdb.connect(str(load_env.db), read_only=True) as con:
        outcomes = con.execute("select outcome from unpod.load_history order by started_at").fetchall()
    assert outcomes == [("ok",), ("partial",), ("ok",)], "the night that exited 1 is not ok"
