"""Every transient failure survived, every failure explained: the job's exit code and words, run for real."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from conftest import REPO, LoadEnv, assert_matches_truth, make_env
from unpod_runs.api.client import ConfigError, RequestFailed, SpaceError, UnpodClient
from unpod_runs.pipeline.load import run_load
from unpod_runs.pipeline.workspace import Workspace
from unpod_runs.sandbox.server import FAULT_KINDS, FaultPlan, SandboxServer
from unpod_runs.sandbox.world import World

RUNS_BODY = {"count": 1, "status_code": 200, "message": "Runs Fetched Successfully",
             "data": [{"run_id": "R" + "e" * 32, "status": "completed", "created": "2026-11-20T10:00:00",
                       "modified": "2026-11-20T10:05:00"}]}


class ScriptedServer:
    """Answers one route with a script of (status, headers, body), the last answer repeated: the API's rarer
    answers (a date in Retry-After, a 206 nobody documented, a proxy's 200 page) on demand, over loopback."""

    def __init__(self, script: list[tuple[int, dict, bytes]]):
        self.script = list(script)
        self.requests = 0
        self.paths: list[str] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index = min(scripted.requests, len(scripted.script) - 1)
                scripted.requests += 1
                scripted.paths.append(self.path)
                status, headers, body = scripted.script[index]
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v2/platform/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def scripted_client(script: list[tuple[int, dict, bytes]]) -> tuple[ScriptedServer, UnpodClient]:
    server = ScriptedServer(script)
    return server, UnpodClient(server.base_url, "f" * 40, org_handle="acme", max_attempts=5, backoff_factor=0.01)


def json_answer(status: int, payload: dict, **headers: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(payload).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def history(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select outcome, runs_rejected, spaces_failed from unpod.load_history order by started_at").fetchall()


# Transient trouble costs nothing


def test_runs_fetch_failed_is_retried_and_the_night_exits_0(load_env: LoadEnv):
    load_env.server.faults = FaultPlan(seed=5, rate=0.4, kinds=("206",))

    result = load_env.cli("load")

    assert result.returncode == 0, result.stderr
    assert "Runs Fetch Failed" in result.stderr  # the retries say what they retried
    assert any(record.fault == "206" for record in load_env.server.requests)
    assert_matches_truth(load_env.db, load_env.world)


def test_fifteen_percent_faults_of_every_kind_with_default_attempts_exit_0_and_exact(tmp_path):
    world = World(seed=31, spaces=12, runs=[0, 3, 40, 120, 260, 7, 15, 90, 33, 1, 64, 200])
    faults = FaultPlan(seed=31, rate=0.15, kinds=FAULT_KINDS, retry_after_s=0.01, slow_s=0.05)
    with SandboxServer(world, faults=faults) as server:
        env = make_env(tmp_path, world, server, page_size="20")
        db = tmp_path / "unpod_runs.duckdb"
        for night in range(3):
            result = subprocess.run([sys.executable, "-m", "unpod_runs.cli", "load", "--db", str(db)], env=env,
                                    capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert result.returncode == 0, (night, result.stderr)
            assert_matches_truth(db, world)
            world.advance(hours=24, seed=40 + night)
        faulted = [record.fault for record in server.requests if record.fault]
    assert len(set(faulted)) >= 4, faulted
    assert [outcome for outcome, *_ in history(db)] == ["ok", "ok", "ok"]


def test_sandbox_faults_start_with_the_first_requests(load_env: LoadEnv):
    load_env.server.faults = FaultPlan(seed=0, rate=0.2)

    summary = run_load(load_env.db)

    assert load_env.server.requests[0].fault is not None
    assert summary.exit_code == 0 and summary.retries > 0


def test_retry_after_as_an_http_date_is_honoured(monkeypatch):
    from unpod_runs.api import client as client_module

    slept: list[float] = []
    monkeypatch.setattr(client_module, "time", SimpleNamespace(sleep=slept.append))
    # An HTTP date has whole seconds: ten seconds ahead is between nine and ten seconds away.
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)
    server, client = scripted_client([(429, {"Retry-After": when}, b""), json_answer(200, RUNS_BODY)])
    try:
        page = client.runs_page("SPACE", 1, 10)
    finally:
        server.close()
    assert page.count == 1 and server.requests == 2 and client.stats.retries == 1
    # The wait is the server's date, not the client's own backoff (a factor of 0.01 would wait about 0.01 s).
    assert len(slept) == 1 and 8 < slept[0] <= 10, slept


def test_a_200_that_is_not_the_apis_json_is_retried():
    proxy_page = (200, {"Content-Type": "text/html"}, b"<html><body>Please wait...</body></html>")
    server, client = scripted_client([proxy_page, json_answer(200, {"count": 1, "data": {}}), json_answer(200, RUNS_BODY)])
    try:
        page = client.runs_page("SPACE", 1, 10)
    finally:
        server.close()
    assert [item["run_id"] for item in page.items] == ["R" + "e" * 32] and server.requests == 3


def test_an_unknown_206_is_retried_once_then_fails_by_name():
    server, client = scripted_client([json_answer(206, {"status_code": 206, "message": "Quota Exceeded", "data": {}})])
    try:
        with pytest.raises(SpaceError) as caught:
            client.runs_page("SPACE", 2, 10)
    finally:
        server.close()
    assert server.requests == 2
    assert "space SPACE: Quota Exceeded (HTTP 206, space SPACE page 2)" in str(caught.value)


@pytest.mark.parametrize(("answer", "words"), [
    (json_answer(206, {"status_code": 206, "message": "Invalid Space Token", "data": {}}), "Invalid Space Token"),
    (json_answer(206, {"status_code": 206, "message": "You Don't have Access to this Space", "data": {}}), "no access"),
    (json_answer(404, {"message": "Not found."}), r"Not found\. \(HTTP 404"),
])
def test_permanent_space_answers_are_not_retried(answer, words):
    server, client = scripted_client([answer])
    try:
        with pytest.raises(SpaceError, match=words):
            client.runs_page("SPACE", 1, 10)
    finally:
        server.close()
    assert server.requests == 1


def test_runs_fetch_failed_that_lasts_fails_its_space_alone_by_name(load_env: LoadEnv):
    broken = load_env.world.space_tokens()[-1]
    load_env.server.faults = FaultPlan(fail_spaces_upstream={broken})

    result = load_env.cli("load")

    assert result.returncode == 1
    assert f"space {broken}: Runs Fetch Failed (HTTP 206" in result.stderr
    assert "still there after 6 attempts" in result.stderr
    assert load_env.server.count("runs", broken) == 6
    assert [outcome for outcome, *_ in history(load_env.db)] == ["partial"]


# Bad configuration, as a new user meets it


def test_a_wrong_token_says_authentication_failed_unauthorized_and_exits_2(load_env: LoadEnv):
    result = load_env.cli("load", env={"SOURCES__UNPOD__API_TOKEN": "0" * 40})

    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert "authentication failed" in message and "unauthorized" in message and "HTTP 401" in message
    assert "SOURCES__UNPOD__API_TOKEN" in message and "0" * 40 not in result.stderr
    assert load_env.server.count() == 1  # refused for good: not retried
    assert not load_env.db.exists()


@pytest.mark.parametrize("spaces", ["discovered", "listed"])
def test_a_base_url_with_a_wrong_path_says_the_url_is_wrong(load_env: LoadEnv, spaces: str):
    wrong = load_env.server.base_url.replace("/api/v2/", "/api/v1/")
    env = {"SOURCES__UNPOD__BASE_URL": wrong}
    if spaces == "listed":
        env["SOURCES__UNPOD__SPACE_TOKENS"] = ",".join(load_env.world.space_tokens())

    result = load_env.cli("load", env=env)

    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "HTTP 404 with an HTML page" in message and "the URL path is wrong" in message
    assert "SOURCES__UNPOD__BASE_URL" in message and wrong in message
    assert "ORG_HANDLE" not in message


def test_connection_refused_names_host_and_port(load_env: LoadEnv):
    port = free_port()

    result = load_env.cli("load", env={"SOURCES__UNPOD__BASE_URL": f"http://127.0.0.1:{port}/api/v2/platform/"})

    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert f"connection refused by 127.0.0.1:{port}" in message
    assert "gave up after 6 attempts" in message and "SOURCES__UNPOD__BASE_URL" in message


def test_https_to_a_plain_http_port_says_so(load_env: LoadEnv):
    https = load_env.server.base_url.replace("http://", "https://")

    result = load_env.cli("load", env={"SOURCES__UNPOD__BASE_URL": https})

    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert f"127.0.0.1:{load_env.server.port}" in message and "this port speaks plain HTTP, not HTTPS" in message


def test_verbose_goes_before_or_after_the_command(load_env: LoadEnv):
    after = load_env.cli("load", "--verbose")
    before = subprocess.run([sys.executable, "-m", "unpod_runs.cli", "--verbose", "status", "--db", str(load_env.db)],
                            env=load_env.env, capture_output=True, text=True, timeout=60)

    assert after.returncode == 0, after.stderr
    assert "level=DEBUG" in after.stderr
    assert before.returncode == 0 and "last load" in before.stdout


@pytest.mark.parametrize("value", ["['{0}', '{1}']", '["{0}", "{1}"]', "{0},{1}", "{0}, {1}", "{0} {1}"])
def test_space_tokens_in_every_documented_form(load_env: LoadEnv, value: str):
    first, second = load_env.world.space_tokens()[1:]

    result = load_env.cli("load", env={"SOURCES__UNPOD__SPACE_TOKENS": value.format(first, second),
                                       "SOURCES__UNPOD__ORG_HANDLE": ""})

    assert result.returncode == 0, result.stderr
    assert "2 loaded" in result.stdout
    assert_matches_truth(load_env.db, load_env.world, spaces={first, second})


def test_space_tokens_in_no_known_form_list_the_accepted_ones(load_env: LoadEnv):
    result = load_env.cli("load", env={"SOURCES__UNPOD__SPACE_TOKENS": "['A', 'B'"})

    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert "SOURCES__UNPOD__SPACE_TOKENS" in message and "accepted forms" in message
    assert "['A', 'B']" in message and '["A", "B"]' in message and "A,B" in message


@pytest.mark.parametrize(("key", "value", "words"), [
    ("PAGE_SIZE", "abc", "SOURCES__UNPOD__PAGE_SIZE 'abc' is not a whole number"),
    ("REQUEST_TIMEOUT", "soon", "SOURCES__UNPOD__REQUEST_TIMEOUT 'soon' is not a number"),
    ("BASE_URL", "unpod.ai/api/v2/platform/", "base_url 'unpod.ai/api/v2/platform/' is not an http(s) URL"),
])
def test_a_setting_of_the_wrong_type_is_named_with_its_value(load_env: LoadEnv, key: str, value: str, words: str):
    result = load_env.cli("load", env={f"SOURCES__UNPOD__{key}": value})

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"unpod-runs: {words}")
    assert load_env.server.count() == 0


def test_run_from_another_folder_names_the_folder_searched_and_dlt_project_dir(load_env: LoadEnv, tmp_path: Path):
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "secrets.toml").write_text(f'[sources.unpod]\napi_token = "{load_env.world.api_token}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in load_env.env.items() if key != "SOURCES__UNPOD__API_TOKEN"}
    command = [sys.executable, "-m", "unpod_runs.cli", "load", "--db", str(load_env.db)]

    lost = subprocess.run(command, env=env, cwd=elsewhere, capture_output=True, text=True, timeout=60)
    found = subprocess.run(command[:-2], env={**env, "DLT_PROJECT_DIR": str(project)}, cwd=elsewhere,
                           capture_output=True, text=True, timeout=120)

    assert lost.returncode == 2
    message = lost.stderr.strip().splitlines()[-1]
    assert "SOURCES__UNPOD__API_TOKEN" in message and str(elsewhere / ".dlt") in message
    assert "does not exist" in message and "DLT_PROJECT_DIR" in message
    assert found.returncode == 0, found.stderr
    assert (project / "data" / "unpod_runs.duckdb").exists() and not (elsewhere / "data").exists()


def test_deploy_files_point_dlt_at_the_project_folder():
    for name in ("unpod-runs.service", "unpod-runs-full-scan.service", "unpod-runs.cron"):
        assert "DLT_PROJECT_DIR=/opt/unpod-runs" in (REPO / "deploy" / name).read_text(), name


# Bad data and a failed publish: exit 1, said precisely, and consistent with the history


def test_rejected_items_are_named_by_space_page_and_field(load_env: LoadEnv):
    world = load_env.world
    token = max(world.space_tokens(), key=lambda space: len(world.runs(space)))
    world.add_raw_run(token, {"status": "completed", "created": "2026-11-20T10:00:00"})
    world.add_raw_run(token, {"run_id": "R" + "a" * 32, "status": "failed", "created": "not-a-date"})

    result = load_env.cli("load")

    assert result.returncode == 1
    assert f"space {token} page 1: created 'not-a-date' (1), run_id missing (1)" in result.stderr
    assert "2 run items rejected" in result.stderr and "unpod.runs_rejected" in result.stderr
    assert history(load_env.db) == [("partial", 2, 0)]


def test_a_failed_data_check_exits_1_and_the_history_and_report_say_so(load_env: LoadEnv):
    token = load_env.world.space_tokens()[-1]
    load_env.world.add_raw_run(token, {"run_id": "R" + "9" * 32, "status": "completed",
                                       "created": "2026-11-20T10:00:00", "modified": "2026-11-20T09:00:00"})

    result = load_env.cli("load")

    assert result.returncode == 1
    assert "data checks failed" in result.stderr and "runs_modified_not_before_created" in result.stderr
    assert history(load_env.db) == [("partial", 0, 0)]
    with duckdb.connect(str(load_env.db), read_only=True) as con:
        assert con.execute("select outcome from analytics.load_history").fetchall() == [("partial",)]
    assert ": partial" in load_env.db.with_name("report.html").read_text()


def test_a_clean_night_is_ok_in_the_history_too(load_env: LoadEnv):
    result = load_env.cli("load")

    assert result.returncode == 0
    assert history(load_env.db) == [("ok", 0, 0)]


@pytest.mark.usefixtures("after_night_one")
def test_a_failed_publish_leaves_no_copy_and_no_report_of_unpublished_data(load_env: LoadEnv):
    report = load_env.db.with_name("report.html")
    last_night = report.read_text()
    published = load_env.db.read_bytes()
    # A working copy is there (as a night that did not publish leaves it), and the published file turns into
    # something a rename cannot replace.
    Workspace.for_db(load_env.db).prepare()
    load_env.db.unlink()
    load_env.db.mkdir()
    (load_env.db / "keep").write_bytes(published)
    load_env.world.add_runs(load_env.world.space_tokens()[-1], n=5)

    result = load_env.cli("load")

    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert f"could not publish {load_env.db}" in message and "the next load publishes it" in message
    leftovers = [path.name for path in load_env.db.parent.iterdir() if ".publish-" in path.name or "pending" in path.name]
    assert leftovers == []
    assert report.read_text() == last_night


@pytest.mark.usefixtures("after_night_one")
def test_a_published_file_that_cannot_be_copied_fails_the_night_before_it_reads_anything(load_env: LoadEnv):
    published = load_env.db.read_bytes()
    load_env.db.unlink()
    load_env.db.mkdir()  # no working copy, and nothing to seed one from

    result = load_env.cli("load")

    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert f"could not copy {load_env.db} into the working copy" in message and "nothing was loaded" in message
    assert load_env.server.count() == 0
    shutil.rmtree(load_env.db)
    load_env.db.write_bytes(published)
    assert load_env.cli("load").returncode == 0


def test_a_load_that_cannot_reach_the_api_mid_night_is_named(load_env: LoadEnv):
    token = load_env.world.space_tokens()[-1]
    load_env.server.faults = FaultPlan(seed=1, rate=1.0, kinds=("drop",))

    result = load_env.cli("load", env={"SOURCES__UNPOD__SPACE_TOKENS": token, "SOURCES__UNPOD__REQUEST_MAX_ATTEMPTS": "3"})

    assert result.returncode == 1
    assert f"space {token}" in result.stderr and "gave up after 3 attempts" in result.stderr
    assert f"127.0.0.1:{load_env.server.port}" in result.stderr


def test_errors_raised_by_the_client_name_the_url():
    server, client = scripted_client([(418, {"Content-Type": "text/plain"}, b"short and stout")])
    try:
        with pytest.raises(RequestFailed) as caught:
            client.runs_page("SPACE", 1, 10)
    finally:
        server.close()
    assert f"HTTP 418 I'm a Teapot from {server.base_url}spaces/SPACE/runs/" in str(caught.value)


def test_requests_go_through_the_environments_proxy_unless_no_proxy_exempts_the_host(monkeypatch):
    """HTTP_PROXY / NO_PROXY are honoured as requests honours them: the proxy gets the absolute URL."""
    proxy = ScriptedServer([json_answer(200, {"data": [{"token": "S1"}]})])
    api_root = "http://api.unpod.invalid/api/v2/platform/"
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.split("/api/")[0])
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert UnpodClient(api_root, "f" * 40, org_handle="acme").list_spaces() == [{"token": "S1"}]
        assert proxy.paths == [api_root + "spaces/"]

        monkeypatch.setenv("NO_PROXY", "api.unpod.invalid")
        exempt = UnpodClient(api_root, "f" * 40, org_handle="acme", max_attempts=1)
        with pytest.raises(RequestFailed, match="cannot resolve host 'api.unpod.invalid'"):
            exempt.list_spaces()
        assert proxy.requests == 1
    finally:
        proxy.close()


def test_spaces_list_for_an_unknown_organization_names_the_handle():
    server, client = scripted_client([json_answer(404, {"message": "Organization not found"})])
    try:
        with pytest.raises(ConfigError) as caught:
            client.list_spaces()
    finally:
        server.close()
    assert "Organization not found (HTTP 404); check SOURCES__UNPOD__ORG_HANDLE ('acme')" in str(caught.value)


def test_the_token_is_in_no_message(load_env: LoadEnv):
    results = [
        load_env.cli("load", env={"SOURCES__UNPOD__BASE_URL": load_env.server.base_url.replace("http:", "https:")}),
        load_env.cli("load", env={"SOURCES__UNPOD__BASE_URL": f"http://127.0.0.1:{free_port()}/api/v2/platform/"}),
        load_env.cli("load", env={"SOURCES__UNPOD__BASE_URL": load_env.server.base_url + "x/"}),
    ]
    for result in results:
        assert result.returncode != 0
        assert load_env.world.api_token not in result.stdout + result.stderr
