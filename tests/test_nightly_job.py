"""The job as a scheduler runs it: real processes, killed, locked, read from and searched for the token."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, assert_matches_truth, make_env, stored_runs
from unpod_runs.pipeline.load import KILL_AT_PHASE_ENV
from unpod_runs.pipeline.workspace import LoadLock
from unpod_runs.sandbox.server import RequestRecord, SandboxServer
from unpod_runs.sandbox.world import World


class HoldingSandbox(SandboxServer):
    """A sandbox that can hold a load in the middle of its extraction, for exactly as long as a test needs.

    Once armed, it answers the next `answers` runs requests and keeps every later one waiting until released."""

    def __init__(self, world: World, **settings):
        super().__init__(world, **settings)
        self.holding = threading.Event()  # a runs request is being held
        self._released = threading.Event()
        self._answers_left: int | None = None
        self._gate = threading.Lock()

    def hold_runs_after(self, answers: int) -> None:
        self._released.clear()
        self.holding.clear()
        self._answers_left = answers

    def release(self) -> None:
        """Answer the held requests and every later one."""
        self._answers_left = None
        self._released.set()

    def record(self, record: RequestRecord) -> None:
        # The handler records a request before it answers it: waiting here holds the answer back.
        if record.kind == "runs" and self._answers_left is not None:
            with self._gate:
                hold = self._answers_left == 0
                self._answers_left -= not hold
            if hold:
                self.holding.set()
                self._released.wait(timeout=300)
        super().record(record)

    def stop(self) -> None:
        self.release()
        super().stop()


JOB_WORLD = {"seed": 21, "spaces": 4, "runs": [30, 60, 90, 120]}
JOB_SETTINGS = {"page_size": "10", "workers": "2"}


@pytest.fixture
def job(tmp_path):
    world = World(**JOB_WORLD)
    with HoldingSandbox(world) as server:
        env = make_env(tmp_path, world, server, **JOB_SETTINGS)
        data = tmp_path / "data"
        data.mkdir()
        yield world, server, env, data / "unpod_runs.duckdb"


@pytest.fixture
def job_after_night_one(job, night_one):
    """The job after its first nightly load, from a template."""
    world, server, env, db = job
    night_one.copy_into(db, Path(env["DLT_DATA_DIR"]), JOB_WORLD, **JOB_SETTINGS)
    return job


def unpod_runs(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "unpod_runs.cli", *args], env=env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("phase", ["extract", "normalize", "load", "models", "publish"])
def test_killed_load_loses_nothing_and_next_load_completes_it(job_after_night_one, phase):
    world, server, env, db = job_after_night_one
    world.advance(hours=24, seed=2)

    if phase == "extract":
        # Killed in the middle of extracting: two pages are in, the process waits for the third.
        server.hold_runs_after(2)
        process = unpod_runs(env, "load", "--db", str(db))
        assert server.holding.wait(timeout=120), "the load never asked for a third page"
        process.send_signal(signal.SIGKILL)
    else:
        process = unpod_runs({**env, KILL_AT_PHASE_ENV: phase}, "load", "--db", str(db))
    stderr = process.communicate(timeout=120)[1]
    assert f"event=phase name={phase}" in stderr
    assert process.returncode == -signal.SIGKILL
    server.release()
    world.advance(hours=24, seed=3)

    code, stdout, stderr = finish(unpod_runs(env, "load", "--db", str(db)))

    assert code == 0, stderr
    if phase in ("normalize", "load"):
        # The killed night's package was completed first, then tonight was extracted as well.
        assert "event=resume_interrupted_load" in stderr
        assert stderr.index("event=resume_interrupted_load") < stderr.index("event=phase name=extract")
    assert_matches_truth(db, world)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) = count(distinct run_id) from unpod.runs").fetchone()[0]


def test_reader_holding_the_database_open_never_fails_the_load(job_after_night_one):
    world, server, env, db = job_after_night_one
    before = len(stored_runs(db))
    reader = duckdb.connect(str(db), read_only=True)
    world.advance(hours=24, seed=5)

    code, _, stderr = finish(unpod_runs(env, "load", "--db", str(db)))

    assert code == 0, stderr
    # The open reader still sees last night's consistent database; a new reader sees tonight's.
    assert reader.execute("select count(*) from unpod.runs").fetchone()[0] == before
    reader.close()
    assert_matches_truth(db, world)


def test_load_while_models_runs_exits_3_and_names_models(job_after_night_one):
    world, server, env, db = job_after_night_one
    world.advance(hours=24, seed=6)

    with LoadLock(db, "models"):  # what `unpod-runs models` holds while it rebuilds
        code, _, stderr = finish(unpod_runs(env, "load", "--db", str(db)))

    assert code == 3
    assert f"{db} is being written by another command (unpod-runs models, pid " in stderr
    assert env["SOURCES__UNPOD__API_TOKEN"] not in stderr
    assert finish(unpod_runs(env, "load", "--db", str(db)))[0] == 0
    assert_matches_truth(db, world)


def test_second_load_while_one_runs_exits_3(job):
    world, server, env, db = job
    server.hold_runs_after(0)  # the first load holds the lock, waiting for its first page
    first = unpod_runs(env, "load", "--db", str(db))
    assert server.holding.wait(timeout=120)

    code, _, stderr = finish(unpod_runs(env, "load", "--db", str(db)))

    assert code == 3
    assert f"{db} is being written by another command (unpod-runs load, pid {first.pid} since " in stderr
    server.release()
    assert finish(first)[0] == 0
    assert_matches_truth(db, world)


def test_lock_left_by_a_killed_process_does_not_block(job):
    world, server, env, db = job
    lock_path = db.with_name(db.name + ".lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); time.sleep(60)", str(lock_path)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    assert finish(unpod_runs(env, "load", "--db", str(db)))[0] == 3
    holder.kill()
    holder.wait()
    assert lock_path.exists()

    code, _, stderr = finish(unpod_runs(env, "load", "--db", str(db)))
    assert code == 0, stderr


def test_bad_token_exits_2_and_changes_nothing(job_after_night_one):
    world, server, env, db = job_after_night_one
    published = db.read_bytes()
    world.advance(hours=24, seed=6)

    code, stdout, stderr = finish(unpod_runs({**env, "SOURCES__UNPOD__API_TOKEN": "0" * 40}, "load", "--db", str(db)))

    assert code == 2
    assert "refused the token" in stderr and "Traceback" not in stderr
    assert db.read_bytes() == published


def test_bad_token_with_explicit_spaces_exits_2(job):
    world, server, env, db = job
    env = {**env, "SOURCES__UNPOD__API_TOKEN": "f" * 40, "SOURCES__UNPOD__SPACE_TOKENS": ",".join(world.space_tokens())}
    code, _, stderr = finish(unpod_runs(env, "load", "--db", str(db)))
    assert code == 2, stderr
    assert not db.exists()


def test_missing_token_exits_2(job):
    world, server, env, db = job
    env = {key: value for key, value in env.items() if key != "SOURCES__UNPOD__API_TOKEN"}
    code, _, stderr = finish(unpod_runs(env, "load", "--db", str(db)))
    assert code == 2
    assert "SOURCES__UNPOD__API_TOKEN" in stderr


def test_clear_text_http_to_a_remote_host_is_refused(job):
    world, server, env, db = job
    code, _, stderr = finish(unpod_runs({**env, "SOURCES__UNPOD__BASE_URL": "http://unpod.example/api/"}, "load", "--db", str(db)))
    assert code == 2
    assert "http://" in stderr and "clear" in stderr


def test_unknown_space_among_good_ones_exits_1_and_loads_the_others(job):
    world, server, env, db = job
    good = world.space_tokens()[:2]
    env = {**env, "SOURCES__UNPOD__SPACE_TOKENS": ",".join([good[0], "NOSUCHSPACE0000000000000", good[1]])}
    code, stdout, stderr = finish(unpod_runs(env, "load", "--db", str(db)))
    assert code == 1
    assert "NOSUCHSPACE0000000000000" in stderr + stdout
    assert "Invalid Space Token" in stderr + stdout
    assert_matches_truth(db, world, spaces=set(good))


def test_space_answering_206_to_everything_fails_alone_and_keeps_its_state(tmp_path):
    from unpod_runs.sandbox.server import FaultPlan

    world = World(seed=8, spaces=3, runs=[20, 20, 20])
    broken = world.space_tokens()[1]
    with SandboxServer(world, faults=FaultPlan(always_206={broken})) as server:
        env = make_env(tmp_path, world, server, page_size="10")
        db = tmp_path / "unpod_runs.duckdb"
        code, stdout, stderr = finish(unpod_runs(env, "load", "--db", str(db)))
        assert code == 1
        assert broken in stderr + stdout and "Runs Fetch Failed" in stderr + stdout
        others = set(world.space_tokens()) - {broken}
        assert_matches_truth(db, world, spaces=others)
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("select count(*) from unpod.runs where space_token = ?", [broken]).fetchone()[0] == 0


def test_hostile_space_tokens_stay_one_path_segment(job):
    world, server, env, db = job
    hostile = ["../../spaces", "a/b?c=d#e", "%2e%2e", "..", "x%y/../z", "q?page=1#frag%"]
    env = {**env, "SOURCES__UNPOD__SPACE_TOKENS": '["' + '","'.join(hostile) + f'","{world.space_tokens()[0]}"]'}
    code, stdout, stderr = finish(unpod_runs(env, "load", "--db", str(db)))
    assert code == 1
    for record in server.requests:
        route = record.path.split("/api/v2/platform/", 1)[1].split("/")
        assert route[0] == "spaces" and route[-1] == "", record.path
        assert len(route) in (2, 3) or (len(route) == 4 and route[2] == "runs"), record.path
    assert any("q%3Fpage%3D1%23frag%25" in record.path for record in server.requests)
    assert "'..'" in stderr and "'../../spaces'" in stderr and "refused" in stderr
    assert_matches_truth(db, world, spaces={world.space_tokens()[0]})


def test_token_appears_nowhere(job, tmp_path):
    world, server, env, db = job
    outputs = []
    for args in (["load", "--db", str(db)], ["load", "--db", str(db), "--full-scan"], ["status", "--db", str(db)],
                 ["export", "--db", str(db), "--out", str(tmp_path / "export")]):
        outputs.append(finish(unpod_runs({**env, "RUNTIME__LOG_LEVEL": "DEBUG"}, *args)))
    bad = finish(unpod_runs({**env, "SOURCES__UNPOD__BASE_URL": server.base_url + "nope/"}, "load", "--db", str(db)))
    token = world.api_token
    for code, stdout, stderr in [*outputs, bad]:
        assert token not in stdout and token not in stderr
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".duckdb" for path in written)
    for path in written:
        assert token.encode() not in path.read_bytes(), path
