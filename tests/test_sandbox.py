"""The Unpod sandbox: its world is realistic and deterministic, and its HTTP API behaves as unpod-api.md says.

Every test talks real HTTP over loopback to a server of its own."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import urllib3

from unpod_runs.sandbox import server as sandbox_server
from unpod_runs.sandbox.cli import serve
from unpod_runs.sandbox.server import FAULT_KINDS, MSG_NO_ACCESS, FaultPlan, SandboxServer
from unpod_runs.sandbox.world import (DEFAULT_NOW, FULL_FIELDS, OPEN_STATUSES, RUN_MODES, SIX_FIELDS, STALE_DAYS,
                                      STUCK_SHARE, TERMINAL_STATUSES, World)

RUN_ID = re.compile(r"^R[0-9a-f]{12}1[0-9a-f]{3}[89ab][0-9a-f]{15}$")
SPACE_TOKEN = re.compile(r"^[A-Z0-9]{24}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


@pytest.fixture
def world() -> World:
    return World(seed=7, runs=[120, 30, 0])


@pytest.fixture
def server(world: World):
    with SandboxServer(world) as server:
        yield server


@pytest.fixture
def api(world: World) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {world.api_token}"
    return session


def runs_url(server: SandboxServer, token: str) -> str:
    return f"{server.base_url}spaces/{token}/runs/"


def get_page(api: requests.Session, server: SandboxServer, token: str, **params) -> dict:
    response = api.get(runs_url(server, token), params=params)
    assert response.status_code == 200, response.text
    return response.json()


# The world


def test_world_is_deterministic_for_a_seed():
    first, again, other = World(seed=3, runs=500), World(seed=3, runs=500), World(seed=4, runs=500)
    assert first.truth() == again.truth()
    assert first.space_tokens() == again.space_tokens()
    assert first.api_token == again.api_token != other.api_token
    assert re.fullmatch(r"[0-9a-f]{40}", first.api_token)
    assert set(first.truth()).isdisjoint(other.truth())
    assert first.advance() == again.advance()
    assert first.truth() == again.truth()


def test_world_runs_look_like_the_api_serves_them():
    world = World(seed=1, spaces=4, runs=4000)
    truth = world.truth()
    assert len(truth) == 4000
    for token in world.space_tokens():
        assert SPACE_TOKEN.match(token)
        runs = world.runs(token)
        created = [run["created"] for run in runs]
        assert created == sorted(created, reverse=True), "newest created first"
        for run in runs:
            assert tuple(run) == FULL_FIELDS
            assert RUN_ID.match(run["run_id"])
            assert TIMESTAMP.match(run["created"]) and TIMESTAMP.match(run["modified"])
            assert run["modified"] >= run["created"]
            assert run["modified"] <= world.now.strftime("%Y-%m-%dT%H:%M:%S")
            assert run["space_id"].isdigit() and run["user"].isdigit()
            assert run["thread_id"] is None or isinstance(run["thread_id"], str)
            assert isinstance(run["batch_count"], int)
            assert run["run_mode"] in RUN_MODES
            assert run["collection_ref"].startswith("collection_data_")
    statuses = [run["status"] for run in truth.values()]
    open_runs = [run for run in truth.values() if run["status"] in OPEN_STATUSES]
    assert 0.03 < len(open_runs) / len(truth) < 0.07
    assert statuses.count("completed") > statuses.count("failed") > statuses.count("partially_completed") > 0
    two_days_ago = (world.now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    old = [run for run in truth.values() if run["created"] < two_days_ago]
    old_open = [run for run in old if run["status"] in OPEN_STATUSES]
    assert 0 < len(old_open) < 0.05 * len(old), "a few old runs are stuck, most old runs are terminal"
    assert {run["status"] for run in old_open} <= {"hold", "pending", "scheduled"}
    terminal = [run for run in truth.values() if run["status"] in TERMINAL_STATUSES]
    assert any(run["created"] == run["modified"] for run in terminal)
    assert any(run["created"] != run["modified"] for run in terminal)
    collections_by_space = {}
    for run in truth.values():
        collections_by_space.setdefault(run["space_token"], set()).add(run["collection_ref"])
    assert all(f"collection_data_{token}" in refs for token, refs in collections_by_space.items())
    all_refs = [ref for refs in collections_by_space.values() for ref in refs]
    assert len(set(all_refs)) < len(all_refs), "some collections are shared across spaces"
    assert min(run["created"] for run in truth.values()) > (DEFAULT_NOW - timedelta(days=91)).strftime("%Y-%m-%d")


def test_world_sizes_even_skewed_or_exact():
    even = World(spaces=3, runs=10)
    assert sorted(len(even.runs(t)) for t in even.space_tokens()) == [3, 3, 4]
    skewed = World(spaces=6, runs=6000, skew=True)
    sizes = sorted((len(skewed.runs(t)) for t in skewed.space_tokens()), reverse=True)
    assert sum(sizes) == 6000 and sizes[0] > 3 * sizes[-1]
    exact = World(runs=[5, 0, 2])
    assert [len(exact.runs(t)) for t in reversed(exact.space_tokens())] == [5, 0, 2]


def test_stuck_share_sets_the_old_open_runs_and_states_match_the_truth():
    def old_open(world: World) -> int:
        before = (world.now - timedelta(days=STALE_DAYS)).strftime("%Y-%m-%dT%H:%M:%S")
        return sum(1 for run in world.truth().values() if run["created"] < before and run["status"] in OPEN_STATUSES)

    default = World(seed=5, runs=3000)
    assert default.truth() == World(seed=5, runs=3000, stuck_share=STUCK_SHARE).truth()
    assert old_open(World(seed=5, runs=3000, stuck_share=0.0)) == 0
    assert old_open(World(seed=5, runs=3000, stuck_share=0.6)) > 2 * old_open(default) > 0
    states = default.states()
    columns = ("run_id", "space_token", "status", "created", "modified")
    assert sorted(zip(*(states[name] for name in columns))) == sorted(
        (run_id, *(run[name] for name in columns[1:])) for run_id, run in default.truth().items())


def test_world_changes(world: World):
    token = world.space_tokens()[-1]
    before = world.runs(token)
    [new_id] = world.add_runs(token, 1)
    assert world.runs(token)[0]["run_id"] == new_id and world.runs(token)[0]["status"] == "pending"
    with pytest.raises(ValueError):
        world.add_runs(token, created=world.now - timedelta(days=1))
    old_run = before[-1]
    world.set_status(old_run["run_id"], "failed", bump_modified=False)
    assert world.truth()[old_run["run_id"]] == {**old_run, "status": "failed", "space_token": token}
    world.set_status(new_id, "completed")
    assert world.truth()[new_id]["modified"] > world.truth()[new_id]["created"]
    world.delete_run(old_run["run_id"])
    assert old_run["run_id"] not in world.truth()
    fresh = world.add_space(runs=5, age_days=60)
    assert world.space_tokens()[0] == fresh
    newest_before = max(run["created"] for run in before)
    assert all(run["created"] < newest_before for run in world.runs(fresh))
    world.remove_space(fresh)
    assert fresh not in world.space_tokens() and not any(r["space_token"] == fresh for r in world.truth().values())


def test_advance_adds_runs_and_finishes_open_ones():
    world = World(seed=5, runs=3000, open_fraction=0.1)
    before = world.truth()
    open_before = {rid for rid, run in before.items() if run["status"] in OPEN_STATUSES}
    old_now = world.now
    summary = world.advance(hours=24)
    after = world.truth()
    assert world.now == old_now + timedelta(hours=24)
    assert summary["new"] and set(summary["new"]) == set(after) - set(before)
    assert all(after[rid]["created"] > old_now.strftime("%Y-%m-%dT%H:%M:%S") for rid in summary["new"])
    changed = set(summary["changed"])
    assert changed <= open_before and abs(len(changed) - len(open_before) / 2) <= 1
    assert all(after[rid]["status"] in TERMINAL_STATUSES for rid in changed)
    bumped = {rid for rid in changed if after[rid]["modified"] != before[rid]["modified"]}
    assert bumped and changed - bumped, "some finish with a modified bump, some without"
    for token in world.space_tokens():
        created = [run["created"] for run in world.runs(token)]
        assert created == sorted(created, reverse=True)


# Paging


def test_runs_pages_are_one_based_offsets(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    expected = world.runs(token)
    seen = []
    for page in range(1, 100):
        body = get_page(api, server, token, page=page, page_size=7)
        assert body["count"] == 120
        if not body["data"]:
            break
        seen += body["data"]
    assert page == 19 and seen == expected
    body = get_page(api, server, token, page=1000, page_size=50)
    assert body == {"count": 120, "status_code": 200, "message": "Runs Fetched Successfully", "data": []}
    assert get_page(api, server, token, page=3, page_size=0)["data"] == expected
    assert get_page(api, server, token)["data"] == expected[:50]
    assert get_page(api, server, token, page="two", page_size="many")["data"] == expected[:50]
    assert get_page(api, server, token, page=2, page_size="x")["data"] == expected[50:100]
    assert [r.page for r in server.requests[-2:]] == [1, 2]


def test_runs_body_is_exactly_the_documented_shape(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    body = get_page(api, server, token, page_size=3)
    assert list(body) == ["count", "status_code", "message", "data"]
    assert [tuple(run) for run in body["data"]] == [FULL_FIELDS] * 3
    world.set_shape(token, "six")
    body = get_page(api, server, token, page_size=3)
    assert [tuple(run) for run in body["data"]] == [SIX_FIELDS] * 3
    assert body["data"] == world.runs(token)[:3]
    empty = world.space_tokens()[0]
    assert get_page(api, server, empty) == {"count": 0, "status_code": 200, "message": "Runs Fetched Successfully",
                                            "data": []}


def test_created_during_paging_repeats_a_run(world: World, api: requests.Session):
    token = world.space_tokens()[-1]
    with SandboxServer(world, create_during_paging=1) as server:
        first = get_page(api, server, token, page=1, page_size=10)["data"]
        second = get_page(api, server, token, page=2, page_size=10)["data"]
        third = get_page(api, server, token, page=3, page_size=10)
    assert len(world.runs(token)) == 122 and third["count"] == 121
    assert first + second == world.runs(token)[2:22]
    assert third["data"][0] == second[-1], "offset drift: the next page repeats the last run seen"


def test_deleted_run_makes_the_next_page_skip_one(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    expected = world.runs(token)
    first = get_page(api, server, token, page=1, page_size=10)["data"]
    world.delete_run(first[0]["run_id"])
    second = get_page(api, server, token, page=2, page_size=10)["data"]
    assert second[0] == expected[11]


def test_tasks_of_a_run_page_like_runs(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    run = next(r for r in world.runs(token) if r["batch_count"] >= 3)
    url = f"{runs_url(server, token)}{run['run_id']}/tasks/"
    everything = api.get(url, params={"page_size": 0}).json()
    assert everything["count"] == run["batch_count"] == len(everything["data"])
    assert everything["message"] == "Tasks Fetched Successfully"
    assert all(task["run_id"] == run["run_id"] for task in everything["data"])
    assert api.get(url, params={"page": 2, "page_size": 1}).json()["data"] == everything["data"][1:2]
    assert api.get(f"{runs_url(server, token)}Rnope/tasks/").json()["count"] == 0
    assert server.count("tasks") == 3 and server.count("tasks", space=token) == 3


# Errors


def test_authentication_errors(world: World, server: SandboxServer):
    url = f"{server.base_url}spaces/"
    cases = [
        ({}, {"message": "Authentication credentials were not provided.", "status_code": 401}),
        ({"Authorization": "Bearer abc"}, {"message": "Authentication credentials were not provided.",
                                           "status_code": 401}),
        ({"Authorization": "Token " + "0" * 40}, {"message": "Invalid token.", "status_code": 401}),
    ]
    for headers, body in cases:
        response = requests.get(url, headers={**headers, "Org-Handle": "acme"})
        assert (response.status_code, response.json()) == (401, body)
        assert response.headers["WWW-Authenticate"] == "Token"
    world.revoked_tokens.add(world.api_token)
    response = requests.get(url, headers={"Authorization": f"Token {world.api_token}", "Org-Handle": "acme"})
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized Access",
                                                             "error": "Expired Auth Token"})


def test_spaces_list_needs_the_org_handle(world: World, server: SandboxServer, api: requests.Session):
    url = f"{server.base_url}spaces/"
    missing = api.get(url)
    assert (missing.status_code, missing.json()) == (400, {
        "status_code": 400, "message": "Organization handle is required in Org-Handle header", "data": {}})
    unknown = api.get(url, headers={"Org-Handle": "globex"})
    assert (unknown.status_code, unknown.json()) == (404, {"message": "Organization not found"})
    body = api.get(url, headers={"Org-Handle": "acme"}).json()
    assert body["count"] == 3 and body["message"] == "Spaces Fetched Successfully"
    assert [space["token"] for space in body["data"]] == world.space_tokens()
    assert set(body["data"][0]) == {"name", "slug", "token", "description", "logo", "privacy_type", "space_type",
                                    "content_type", "organization"}
    assert body["data"][0]["organization"]["domain_handle"] == "acme"
    one = api.get(f"{url}{world.space_tokens()[1]}/").json()
    assert one["status_code"] == 200 and one["data"] == world.space(world.space_tokens()[1])


def test_business_errors_are_206_with_no_data(api: requests.Session):
    world = World(seed=2, runs=[3, 3, 3, 3])
    api.headers["Authorization"] = f"Token {world.api_token}"
    gone, no_access, upstream, broken = world.space_tokens()
    world.remove_space(gone)
    faults = FaultPlan(no_access_spaces={no_access}, fail_spaces_upstream={upstream}, always_206={broken})
    with SandboxServer(world, faults=faults) as server:
        def answer(path: str) -> tuple[int, dict]:
            response = api.get(f"{server.base_url}{path}")
            return response.status_code, response.json()

        invalid = (206, {"status_code": 206, "message": "Invalid Space Token", "data": {}})
        assert answer(f"spaces/{gone}/runs/") == invalid
        assert answer(f"spaces/{gone}/") == invalid
        assert answer("spaces/NOSUCHSPACE0000000000000/runs/") == invalid
        assert answer(f"spaces/{no_access}/runs/") == (206, {"status_code": 206, "message": MSG_NO_ACCESS,
                                                              "data": {}})
        status, body = answer(f"spaces/{upstream}/runs/")
        assert status == 206 and body["message"] == "Runs Fetch Failed"
        assert body["data"] == {"errors": body["errors"]} and body["errors"]
        assert answer(f"spaces/{upstream}/")[0] == 200
        assert answer(f"spaces/{broken}/")[1]["message"] == "Runs Fetch Failed"
        assert answer(f"spaces/{upstream}/runs/?page=0")[0] == 206


def test_missing_trailing_slash_redirects_like_django(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    response = api.get(f"{server.base_url}spaces/{token}/runs?page=2&page_size=5", allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"/api/v2/platform/spaces/{token}/runs/?page=2&page_size=5"
    followed = api.get(f"{server.base_url}spaces/{token}/runs?page=2&page_size=5")
    assert followed.json()["data"] == world.runs(token)[5:10]
    unknown = api.get(f"{server.base_url}nothing/here/")
    assert unknown.status_code == 404 and unknown.text.startswith("<!doctype html>")


@pytest.mark.parametrize("token", ["a/b", "x?page=2", "frag#ment", "100%", "..", "../..", "a b"])
def test_percent_encoded_token_is_one_segment(world: World, server: SandboxServer, api: requests.Session,
                                              token: str):
    # Dots too: a client must not let "..", even encoded, climb the path.
    segment = quote(token, safe="").replace(".", "%2E")
    response = api.get(f"{server.base_url}spaces/{segment}/runs/")
    assert (response.status_code, response.json()["message"]) == (206, "Invalid Space Token")
    assert server.requests[-1].space_token == token and server.requests[-1].kind == "runs"
    world.add_space(runs=2, token=token)
    response = api.get(f"{server.base_url}spaces/{segment}/runs/")
    assert response.status_code == 200 and response.json()["data"] == world.runs(token)


# Faults, latency, connections


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_server_and_gateway_errors_are_html(world: World, api: requests.Session, kind: str):
    with SandboxServer(world, faults=FaultPlan(rate=1.0, kinds=(kind,))) as server:
        response = api.get(runs_url(server, world.space_tokens()[-1]))
    assert response.status_code == int(kind)
    assert response.headers["Content-Type"].startswith("text/html") and "<html" in response.text.lower()
    with pytest.raises(ValueError):
        response.json()


@pytest.mark.parametrize(("retry_after_s", "header"), [(0.05, "0.05"), (2, "2")])
def test_429_says_when_to_retry(world: World, api: requests.Session, retry_after_s: float, header: str):
    with SandboxServer(world, faults=FaultPlan(rate=1.0, kinds=("429",), retry_after_s=retry_after_s)) as server:
        response = api.get(runs_url(server, world.space_tokens()[-1]))
    assert (response.status_code, response.headers["Retry-After"]) == (429, header)


def test_dropped_and_truncated_responses(world: World, api: requests.Session):
    token = world.space_tokens()[-1]
    with SandboxServer(world, faults=FaultPlan(rate=1.0, kinds=("drop",))) as server:
        with pytest.raises(requests.ConnectionError):
            api.get(runs_url(server, token))
        assert server.requests[-1].status is None and server.requests[-1].fault == "drop"
    with SandboxServer(world, faults=FaultPlan(rate=1.0, kinds=("truncate",))) as server:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            api.get(runs_url(server, token))
        response = api.get(runs_url(server, token), stream=True)
        assert response.status_code == 200
        received = b""
        with pytest.raises(urllib3.exceptions.ProtocolError):
            for chunk in response.raw.stream(1024, decode_content=False):
                received += chunk
        assert 0 < len(received) < int(response.headers["Content-Length"])


class SleepRecorder:
    """Stands in for the sandbox's `time`: records each sleep, and lets no sleep start until `together` sleepers
    are waiting, so requests whose delays were serialized would never all get through."""

    def __init__(self, together: int = 1):
        self.seconds: list[float] = []
        self._lock = threading.Lock()
        self._together = threading.Barrier(together, timeout=60)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.seconds.append(seconds)
        self._together.wait()
        time.sleep(seconds)


def test_slow_fault_and_latency(world: World, api: requests.Session, monkeypatch: pytest.MonkeyPatch):
    token = world.space_tokens()[-1]
    slept = SleepRecorder()
    monkeypatch.setattr(sandbox_server, "time", slept)
    with SandboxServer(world, faults=FaultPlan(rate=1.0, kinds=("slow",), slow_s=0.3)) as server:
        assert api.get(runs_url(server, token)).status_code == 200
    assert slept.seconds == [0.3]

    slept = SleepRecorder(together=8)
    monkeypatch.setattr(sandbox_server, "time", slept)
    with SandboxServer(world, latency_ms=200) as server:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: requests.get(runs_url(server, token), headers=api.headers).status_code,
                                     range(8)))
    assert statuses == [200] * 8
    assert slept.seconds == [0.2] * 8, "latency delays each request without serializing them"


def test_faults_are_seeded_and_spare_admin_routes(world: World, api: requests.Session):
    def statuses(seed: int) -> list[int | None]:
        plan = FaultPlan(seed=seed, rate=0.5, kinds=("500", "503", "429"), retry_after_s=0)
        with SandboxServer(world, faults=plan) as server:
            for _ in range(30):
                api.get(runs_url(server, world.space_tokens()[-1]))
            assert requests.get(f"http://127.0.0.1:{server.port}/_sandbox/stats").status_code == 200
            return [r.status for r in server.requests if r.kind == "runs"]

    first = statuses(11)
    assert first == statuses(11) != statuses(12)
    assert {200, 500, 503, 429} <= set(first)


def test_every_fault_kind_is_observable(world: World, api: requests.Session):
    plan = FaultPlan(seed=1, rate=1.0, retry_after_s=0, slow_s=0.01)
    with SandboxServer(world, faults=plan) as server:
        for _ in range(60):
            try:
                api.get(runs_url(server, world.space_tokens()[-1]))
            except requests.RequestException:
                pass
        assert {r.fault for r in server.requests} == set(FAULT_KINDS)


def test_keep_alive_and_stop(world: World):
    with SandboxServer(world) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port)
        headers = {"Authorization": f"Token {world.api_token}", "Org-Handle": "acme"}
        for _ in range(3):
            connection.request("GET", "/api/v2/platform/spaces/", headers=headers)
            response = connection.getresponse()
            assert response.status == 200 and response.read()
        assert response.version == 11 and not response.will_close
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        connection.request("GET", "/api/v2/platform/spaces/", headers=headers)
        connection.getresponse()


# Counting and the admin routes


def test_counts_by_kind_and_space(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    api.get(f"{server.base_url}spaces/", headers={"Org-Handle": "acme"})
    api.get(f"{server.base_url}spaces/{token}/")
    for page in (1, 2):
        api.get(runs_url(server, token), params={"page": page})
    api.get(runs_url(server, world.space_tokens()[0]))
    assert (server.count(), server.count("spaces"), server.count("space"), server.count("runs")) == (5, 1, 1, 3)
    assert server.count("runs", space=token) == 2 and server.count(space=token) == 3
    assert [(r.page, r.page_size) for r in server.requests if r.kind == "runs"] == [(1, 50), (2, 50), (1, 50)]
    server.reset_counts()
    assert server.count() == 0


def test_admin_routes_drive_the_world(world: World, server: SandboxServer, api: requests.Session):
    admin = f"http://127.0.0.1:{server.port}/_sandbox/"
    assert requests.get(f"{admin}truth").json() == world.truth()
    token = world.space_tokens()[-1]
    api.get(runs_url(server, token))
    stats = requests.get(f"{admin}stats").json()
    assert stats["total"] == 1 and stats["by_kind"] == {"runs": 1} and stats["by_space"] == {token: {"runs": 1}}
    summary = requests.post(f"{admin}advance", json={"hours": 12, "new_runs": 4}).json()
    assert len(summary["new"]) == 4 and set(summary["new"]) <= set(world.truth())
    run_id = world.runs(token)[-1]["run_id"]
    assert requests.post(f"{admin}set_status", json={"run_id": run_id, "status": "archived",
                                                     "bump_modified": False}).status_code == 200
    assert world.truth()[run_id]["status"] == "archived"
    new_token = requests.post(f"{admin}add_space", json={"runs": 3, "age_days": 30}).json()["token"]
    assert world.space_tokens()[0] == new_token and len(world.runs(new_token)) == 3
    assert requests.post(f"{admin}faults", json={"rate": 1.0, "kinds": ["503"]}).status_code == 200
    assert api.get(runs_url(server, token)).status_code == 503
    assert requests.post(f"{admin}faults", json={"kinds": ["boom"]}).status_code == 400
    assert requests.post(f"{admin}reset_counts").status_code == 200 and server.count() == 0
    assert requests.post(f"{admin}set_status", json={"run_id": "Rnope", "status": "failed"}).status_code == 400


def test_raw_items_are_served_exactly(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    odd = [
        {"collection_ref": "collection_data_X", "status": "completed", "created": "2026-11-27T01:00:00"},
        {"run_id": "R" + "a" * 32, "status": "archived", "created": "2026-11-27T01:00:00Z",
         "modified": "2026-11-27T02:00:00.123456+00:00"},
        {"run_id": "R" + "b" * 32, "status": "completed", "created": "yesterday", "modified": None},
    ]
    for item in odd:
        world.add_raw_run(token, item)
    assert get_page(api, server, token, page_size=3)["data"] == odd[::-1]
    world.set_shape(token, "six")
    assert get_page(api, server, token, page_size=3)["data"] == odd[::-1]
    assert "R" + "a" * 32 in world.truth() and len(world.truth()) == 150 + 2


# The command


@pytest.mark.parametrize("given_token", [None, "f" * 40])
def test_command_serves_until_terminated(given_token: str | None):
    env = {**os.environ, "PYTHONPATH": str(PIPELINES)}
    command = [sys.executable, "-m", "unpod_runs.sandbox", "--port", "0", "--seed", "5", "--runs", "40",
               "--spaces", "2"]
    process = subprocess.Popen(command + (["--token", given_token] if given_token else []), stdout=subprocess.PIPE,
                               text=True, env=env)
    try:
        line = process.stdout.readline()
        base_url = re.search(r"SOURCES__UNPOD__BASE_URL=(\S+)", line).group(1)
        assert "SOURCES__UNPOD__ORG_HANDLE=acme" in line
        if given_token:
            assert given_token not in line, "a token the user chose is never echoed"
            token = given_token
        else:
            token = re.search(r"SOURCES__UNPOD__API_TOKEN=(\S+)", line).group(1)
            assert token == World(seed=5).api_token
        response = requests.get(f"{base_url}spaces/", headers={"Authorization": f"Token {token}",
                                                               "Org-Handle": "acme"})
        assert response.json()["count"] == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_command_refuses_other_hosts_and_bad_options(capsys: pytest.CaptureFixture):
    assert serve(["--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        serve(["--fault-kinds", "500,meteor"])


def test_finishes_are_known_bumped_or_silent():
    world = World(seed=5, runs=3000, open_fraction=0.1)
    before = world.truth()
    start = world.now
    changed = world.advance(hours=24)["changed"]
    finishes = world.finishes()
    after = world.truth()
    assert set(changed) <= set(finishes)
    for run_id in changed:
        assert start < finishes[run_id] <= world.now
        if after[run_id]["modified"] != before[run_id]["modified"]:
            assert finishes[run_id].strftime("%Y-%m-%dT%H:%M:%S") == after[run_id]["modified"]
    born_terminal = next(rid for rid, run in before.items() if run["status"] in TERMINAL_STATUSES)
    assert finishes[born_terminal].strftime("%Y-%m-%dT%H:%M:%S") == before[born_terminal]["modified"]
    silent = world.add_runs(world.space_tokens()[0], 1)[0]
    world.advance(hours=2, new_runs=0, finish_fraction=0)
    world.set_status(silent, "completed", bump_modified=False)
    assert world.finishes()[silent] == world.now and silent not in finishes


def test_date_header_is_the_worlds_clock(world: World, server: SandboxServer, api: requests.Session):
    token = world.space_tokens()[-1]
    response = api.get(runs_url(server, token))
    assert response.headers["Date"] == world.now.strftime("%a, %d %b %Y %H:%M:%S GMT")
    world.advance(hours=5)
    assert api.get(runs_url(server, token)).headers["Date"] == world.now.strftime("%a, %d %b %Y %H:%M:%S GMT")
