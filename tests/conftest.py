"""Shared fixtures: a sandbox world served on loopback, and an isolated load environment per test."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from unpod_runs.sandbox.server import SandboxServer
from unpod_runs.sandbox.world import World

REPO = Path(__file__).resolve().parents[1]


@dataclass
class LoadEnv:
    """Where one test's pipeline writes, and the environment that points it at the sandbox."""

    db: Path
    env: dict[str, str]
    world: World
    server: SandboxServer

    def cli(self, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the real command in its own process."""
        return subprocess.run(
            [sys.executable, "-m", "unpod_runs.cli", *args, "--db", str(self.db)] if args and args[0] != "sandbox" else
            [sys.executable, "-m", "unpod_runs.cli", *args],
            env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout, cwd=self.db.parent,
        )


def make_env(tmp_path: Path, world: World, server: SandboxServer, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SOURCES__", "DLT_", "RUNTIME__"))}
    env.update(
        {
            "SOURCES__UNPOD__API_TOKEN": world.api_token,
            "SOURCES__UNPOD__BASE_URL": server.base_url,
            "SOURCES__UNPOD__ORG_HANDLE": world.org_handle,
            "SOURCES__UNPOD__REQUEST_BACKOFF_FACTOR": "0.01",
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
            "PYTHONPATH": str(REPO / "pipelines"),
        }
    )
    env.update({f"SOURCES__UNPOD__{key.upper()}": value for key, value in settings.items()})
    return env


# The files of the longest tests (each of their loads into another engine is a process of its own, and long).
LONGEST = {"test_engines.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first on every worker, dealt out evenly: the run ends with short tests the workers share,
    not with one worker alone in a long one. (pytest-xdist's worksteal hands each worker a run of the list, sized
    as below, and lets an idle worker take the end of another's.)"""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    # DuckLake's loads are the longest of all: dealt first, so that each worker gets its share of them.
    longest = sorted((item for item in items if item.path.name in LONGEST), key=lambda item: "ducklake" not in item.name)
    others = [item for item in items if item.path.name not in LONGEST]
    ordered: list[pytest.Item] = []
    left = len(items)
    for worker in range(workers):
        share = left // (workers - worker)
        left -= share
        dealt = longest[worker::workers]
        filled = max(0, share - len(dealt))
        ordered += dealt + others[:filled]
        others = others[filled:]
    items[:] = ordered + others


# The world of `load_env`: an empty space, a space of one run, and one of several pages (page_size 10).
DEFAULT_WORLD = {"seed": 11, "spaces": 3, "runs": [0, 1, 57]}


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL 16 for the session, from the locked pgserver wheel, on a Unix socket in a folder of its own.

    Not under pytest's own temporary folder: run as root, the server runs as a user of its own, which must reach
    its data folder through every parent (pytest's are private to the user who runs the tests).
    """
    import pgserver
    import psycopg2

    folder = Path(tempfile.mkdtemp(prefix="unpod-runs-postgres-"))
    folder.chmod(0o755)
    server = pgserver.get_server(folder / "data", cleanup_mode="stop")
    # A crash of the machine is no test's subject: commits need not wait for the disk.
    admin = psycopg2.connect(dbname="postgres", user="postgres", host=str(server.get_postmaster_info().socket_dir))
    admin.autocommit = True
    with admin.cursor() as cursor:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            cursor.execute(f"alter system set {setting} = off")
        cursor.execute("select pg_reload_conf()")
    admin.close()
    yield server
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def _postgres_database(server, name: str, template: str | None = None) -> str:
    """A new database ``name`` (a copy of ``template`` when given), as dlt's connection string (a socket folder is
    given as ``host``)."""
    import psycopg2

    socket = server.get_postmaster_info().socket_dir
    admin = psycopg2.connect(dbname="postgres", user="postgres", host=str(socket))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"drop database if exists {name} with (force)")
        cursor.execute(f"create database {name}" + (f" template {template}" if template else ""))
    admin.close()
    return f"postgresql://postgres:@localhost/{name}?host={socket}"


def _test_database_name(request: pytest.FixtureRequest) -> str:
    return "test_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]


@pytest.fixture
def postgres_url(postgres_server, request: pytest.FixtureRequest) -> str:
    """A database of its own for each test."""
    return _postgres_database(postgres_server, _test_database_name(request))


@pytest.fixture(scope="session")
def postgres_night_one(postgres_server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a database holding the first load of ``DEFAULT_WORLD`` (page_size 10) by ``--destination
    postgres``, built once per test run: PostgreSQL copies it into each test that starts from there."""
    from unpod_runs.pipeline.load import run_load

    name = "night_one_postgres"
    url = _postgres_database(postgres_server, name)
    root = tmp_path_factory.mktemp("night_one_postgres")
    served = World(**DEFAULT_WORLD)
    with SandboxServer(served) as server, pytest.MonkeyPatch.context() as monkeypatch:
        point_dlt_at(make_env(root, served, server, page_size="10"), monkeypatch)
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url)
        summary = run_load(root / "unpod_runs.duckdb", destination="postgres")
    assert summary.exit_code == 0, summary.render() + "\n" + summary.check_problems
    return name


@pytest.fixture
def postgres_after_night_one(postgres_server, postgres_night_one: str, request: pytest.FixtureRequest) -> str:
    """A database of its own for each test, holding the first load of ``DEFAULT_WORLD`` (a copy of the template).
    Its dlt state names the template's pipeline: for tests that read and build on it, not for a next load."""
    return _postgres_database(postgres_server, _test_database_name(request), template=postgres_night_one)


@pytest.fixture
def world() -> World:
    return World(**DEFAULT_WORLD)


@pytest.fixture
def server(world: World):
    with SandboxServer(world) as running:
        yield running


def point_dlt_at(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("SOURCES__", "DLT_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(("SOURCES__", "DLT_")):
            monkeypatch.setenv(key, value)


@pytest.fixture
def load_env(tmp_path: Path, world: World, server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> LoadEnv:
    """In-process loads read dlt's configuration from the environment, restored after the test."""
    env = make_env(tmp_path, world, server, page_size="10")
    point_dlt_at(env, monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    return LoadEnv(db=data / "unpod_runs.duckdb", env=env, world=world, server=server)


class NightOne:
    """Databases after a first load, each built once per test run for a world and its settings, and copied into
    the tests that start from there instead of loading again: the published file and its report, the working copy
    and dlt's folder, so the test's next load is a night two, incremental, exactly as after a load of its own. The sandbox
    of the test served none of it (its request counts start at zero)."""

    DB_NAME = "unpod_runs.duckdb"

    def __init__(self, root: Path) -> None:
        self.root = root

    def copy_into(self, db: Path, dlt_dir: Path, world: dict, **settings: str) -> None:
        assert db.name == self.DB_NAME, f"a template is copied as {self.DB_NAME}"
        template = self._template(world, settings)
        shutil.copytree(template / "data", db.parent, dirs_exist_ok=True)
        shutil.copytree(template / "dlt", dlt_dir)

    def _template(self, world: dict, settings: dict[str, str]) -> Path:
        from unpod_runs.pipeline.load import run_load

        key = repr((sorted(world.items()), sorted(settings.items())))
        root = self.root / f"template_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
        built = root / "built"
        with open(root.with_name(root.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it: wait for it, then copy
            if not built.exists():
                shutil.rmtree(root, ignore_errors=True)  # left half-built by a worker that failed
                (root / "data").mkdir(parents=True)
                served = World(**world)
                with SandboxServer(served) as server, pytest.MonkeyPatch.context() as monkeypatch:
                    point_dlt_at(make_env(root, served, server, **settings), monkeypatch)
                    db = root / "data" / self.DB_NAME
                    summary = run_load(db, report_path=db.with_name("report.html"))  # as `unpod-runs load` does
                assert summary.exit_code == 0, summary.render()
                built.touch()
        return root


@pytest.fixture(scope="session")
def night_one(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> NightOne:
    """One set of templates for the whole run: the workers of pytest-xdist share their base folder's parent."""
    base = tmp_path_factory.getbasetemp()
    root = (base if worker_id == "master" else base.parent) / "night_one"
    root.mkdir(exist_ok=True)
    return NightOne(root)


@pytest.fixture
def after_night_one(load_env: LoadEnv, night_one: NightOne) -> LoadEnv:
    """`load_env` after its first load (``run_load(load_env.db)`` or ``load_env.cli("load")``), from a template. Use
    it as ``@pytest.mark.usefixtures("after_night_one")`` on a test of `load_env` whose first step was that load."""
    night_one.copy_into(load_env.db, Path(load_env.env["DLT_DATA_DIR"]), DEFAULT_WORLD, page_size="10")
    return load_env


def stored_runs(db: Path) -> dict[str, dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute("select * from unpod.runs")
        names = [column[0] for column in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}


def as_utc(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def assert_matches_truth(db: Path, world: World, spaces: set[str] | None = None) -> None:
    """unpod.runs holds every listed run of the loaded spaces exactly once, as the API shows it now."""
    truth = {run_id: run for run_id, run in world.truth().items() if spaces is None or run["space_token"] in spaces}
    with duckdb.connect(str(db), read_only=True) as con:
        duplicated = con.execute(
            "select run_id, count(*) from unpod.runs group by run_id having count(*) > 1 order by run_id limit 5"
        ).fetchall()
    assert duplicated == [], f"runs stored more than once: {duplicated}"
    stored = stored_runs(db)
    if spaces is not None:
        stored = {run_id: row for run_id, row in stored.items() if row["space_token"] in spaces}
    assert set(stored) >= set(truth), f"missing runs: {sorted(set(truth) - set(stored))[:5]}"
    for run_id, run in truth.items():
        row = stored[run_id]
        assert row["space_token"] == run["space_token"], run_id
        assert row["status"] == run.get("status"), (run_id, row["status"], run.get("status"))
        assert row["created"] == as_utc(run.get("created")), run_id
        assert row["modified"] == as_utc(run.get("modified")), run_id
        assert row["collection_ref"] == run.get("collection_ref"), run_id
        assert row["deleted_at"] is None, run_id
