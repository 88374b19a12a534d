"""The Unpod platform API over a `World`, on loopback, with the real service's quirks and a proxy's faults.

Behaves as /work/shared/unpod-api.md describes the real backend (Django REST framework): 1-based offset paging,
206 for business errors, 401 bodies with `WWW-Authenticate: Token`, an HTML 500, and Django's trailing-slash
redirect. On top, a seeded `FaultPlan` plays the proxies in front of it (429, 502-504, cut connections) so clients
can be tested against every failure they will meet.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import random
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from unpod_runs.sandbox.world import World

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2/platform/"
ADMIN_PREFIX = "/_sandbox/"
# "206" is the API's own upstream failure ("Runs Fetch Failed"), as `always_206` answers it on every route.
FAULT_KINDS = ("500", "502", "503", "504", "429", "drop", "truncate", "slow", "206")
DEFAULT_PAGE = 1
DEFAULT_PAGE_SIZE = 50

MSG_NO_CREDENTIALS = "Authentication credentials were not provided."
MSG_INVALID_TOKEN = "Invalid token."
MSG_INVALID_SPACE = "Invalid Space Token"
MSG_NO_ACCESS = "You Don't have Access to this Space, You can't do any operation to this Space"
MSG_RUNS_FAILED = "Runs Fetch Failed"
MSG_ORG_REQUIRED = "Organization handle is required in Org-Handle header"
MSG_ORG_NOT_FOUND = "Organization not found"
UPSTREAM_ERROR = "Error while fetching runs: upstream store timed out"

# Django's production pages (DEBUG off) and nginx's gateway pages: HTML, never JSON.
_DJANGO_500 = (b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n'
               b"  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n")
_DJANGO_404 = (b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
               b"  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n")
_PROXY_REASONS = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
                  504: "Gateway Time-out"}


def _proxy_page(status: int) -> bytes:
    title = f"{status} {_PROXY_REASONS[status]}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            f"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n").encode()


class FaultPlan:
    """Which requests fail, and how; the space sets fail always.

    Random faults hit a share `rate` of the API requests from the first request on: the first request faults,
    and each later stretch of 1/rate requests holds one fault at a random place in it (a coin per request could
    spare a whole small load). Places and kinds come from one seeded generator, so a run of requests fails the
    same way every time."""

    def __init__(self, seed: int = 0, rate: float = 0.0, kinds: tuple[str, ...] | list[str] = FAULT_KINDS,
                 retry_after_s: float = 0.05, slow_s: float = 0.5, always_206: set[str] | tuple = (),
                 fail_spaces_upstream: set[str] | tuple = (), no_access_spaces: set[str] | tuple = ()):
        """`always_206`: spaces whose every route, the space itself included, answers 206 "Runs Fetch Failed".
        `fail_spaces_upstream`: spaces whose runs and tasks answer it (the space itself still answers).
        `no_access_spaces`: spaces the token's user may not see (206 "You Don't have Access...")."""
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected some of {list(FAULT_KINDS)}")
        if not 0 <= rate <= 1:
            raise ValueError(f"fault rate {rate} is not between 0 and 1")
        if rate and not kinds:
            raise ValueError("a fault rate needs at least one fault kind")
        self.seed = seed
        self.rate = rate
        self.kinds = tuple(kinds)
        self.retry_after_s = retry_after_s
        self.slow_s = slow_s
        self.always_206 = frozenset(always_206)
        self.fail_spaces_upstream = frozenset(fail_spaces_upstream)
        self.no_access_spaces = frozenset(no_access_spaces)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests = 0  # API requests drawn for so far
        self._stretches = 0  # stretches of 1/rate requests whose fault is placed
        self._next_fault = self._place_fault() if rate else None

    def _place_fault(self) -> int:
        stretch = 1 / self.rate
        offset = self._rng.random() if self._stretches else 0.0
        place = int((self._stretches + offset) * stretch)
        self._stretches += 1
        # Two stretches shorter than two requests can pick the same request: the later fault moves on one.
        return max(place, self._requests)

    def draw(self) -> str | None:
        """The fault for the next API request, or None."""
        if not self.rate:
            return None
        with self._lock:
            request = self._requests
            self._requests += 1
            if request != self._next_fault:
                return None
            self._next_fault = self._place_fault()
            return self._rng.choice(self.kinds)

    def retry_after(self) -> str:
        """The `Retry-After` value: whole seconds as an int, else a fraction like "0.05"."""
        return f"{self.retry_after_s:g}"


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox answered (or dropped: status None)."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None
    kind: str | None = None
    space_token: str | None = None
    page: int | None = None
    page_size: int | None = None
    fault: str | None = None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def _json(status: int, payload: Any, **headers: str) -> _Response:
    return _Response(status, orjson.dumps(payload), headers=headers)


def _business_error(message: str, data: dict | None = None, **extra: Any) -> _Response:
    """The API's 206: an error in a success status. Its data is {} (or the errors), never a list."""
    return _json(206, {"status_code": 206, "message": message, "data": data or {}, **extra})


def _runs_failed(errors: str) -> _Response:
    return _business_error(MSG_RUNS_FAILED, {"errors": errors}, errors=errors)


def match_route(raw_path: str) -> tuple[str, list[str]] | None:
    """(route kind, decoded path arguments) for a raw request path, or None.

    Splits the raw path on "/" before percent-decoding, so an encoded token containing "/", "?", "#", "%" or ".."
    stays one segment; dot segments are never normalised."""
    if not raw_path.startswith(API_PREFIX):
        return None
    segments = raw_path[len(API_PREFIX):].split("/")
    if segments.pop() != "":
        return None
    decoded = [unquote(segment) for segment in segments]
    if "" in decoded:
        return None
    match decoded:
        case ["spaces"]:
            return "spaces", []
        case ["spaces", token]:
            return "space", [token]
        case ["spaces", token, "runs"]:
            return "runs", [token]
        case ["spaces", token, "runs", run_id, "tasks"]:
            return "tasks", [token, run_id]
    return None


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    # The backend parses with Python's int() and falls back to the default on anything else.
    try:
        return int(query[name])
    except (KeyError, ValueError):
        return default


class SandboxServer:
    """A threaded HTTP server for one `World`; use as a context manager or with start()/stop()."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0,
                 faults: FaultPlan | None = None, create_during_paging: int = 0):
        """`latency_ms` delays every API answer (a network round trip) without serializing requests;
        `create_during_paging` inserts that many runs at the top of a space after each runs page >= 2 served."""
        self.world = world
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.faults = faults or FaultPlan()
        self.create_during_paging = create_during_paging
        self.requests: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API root, like "http://127.0.0.1:PORT/api/v2/platform/"; known once started."""
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{API_PREFIX}"

    def start(self) -> SandboxServer:
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"unpod-sandbox:{self.port}", daemon=True)
        self._thread.start()
        log.info("Unpod sandbox serving %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, so clients see the server gone."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def count(self, kind: str | None = None, space: str | None = None) -> int:
        """API requests received (admin calls excluded), optionally of one route kind and/or one space."""
        with self._records_lock:
            return sum(1 for r in self.requests if r.kind != "admin" and (kind is None or r.kind == kind)
                       and (space is None or r.space_token == space))

    def reset_counts(self) -> None:
        with self._records_lock:
            self.requests.clear()

    def stats(self) -> dict:
        """Request counts for the admin route: total, by route kind, and by space and kind."""
        with self._records_lock:
            api = [r for r in self.requests if r.kind != "admin"]
        by_space: dict[str, Counter] = {}
        for record in api:
            if record.space_token is not None:
                by_space.setdefault(record.space_token, Counter())[record.kind] += 1
        return {"total": len(api), "by_kind": dict(Counter(r.kind or "other" for r in api)),
                "by_space": {token: dict(kinds) for token, kinds in by_space.items()}}

    def record(self, record: RequestRecord) -> None:
        with self._records_lock:
            self.requests.append(record)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive handler threads wait on idle clients; stop() must not wait for them.
    block_on_close = False
    # A benchmark opens many connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request (a TLS hello to this plain-HTTP port, a cut connection) is not a bug here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("connection from %s ended abruptly", client_address)
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in self.connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "unpod-sandbox"
    # Headers and body leave in two writes; with Nagle on, the second waits for a delayed ACK (~40 ms a request).
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds, ending their thread.
    timeout = 60
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header in the world's clock (which moves only with advance()), not the machine's."""
        now = getattr(self, "world_now", None) or self.server.sandbox.world.now
        return email.utils.formatdate(now.timestamp(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        self.world_now = None
        body = self._read_body()
        request = _Request.parse(method, self.path, self.headers)
        # Each request is recorded before its answer leaves, so a client that has its answer finds it counted.
        if request.raw_path.startswith(ADMIN_PREFIX):
            response = _admin(sandbox, method, request.raw_path[len(ADMIN_PREFIX):], body)
            sandbox.record(request.record(response.status, kind="admin"))
            self._send(response)
            return
        if sandbox.latency_ms:
            time.sleep(sandbox.latency_ms / 1000)
        fault = sandbox.faults.draw() if request.raw_path.startswith(API_PREFIX) else None
        if fault == "slow":
            time.sleep(sandbox.faults.slow_s)
        if fault == "drop":
            sandbox.record(request.record(None, fault=fault))
            self.close_connection = True
            return
        with sandbox.world.lock:
            # The answer and its Date header come from one moment of the world: a test's advance() cannot fall
            # between them.
            response = _fault_response(fault, sandbox.faults) or _api(sandbox, request)
            self.world_now = sandbox.world.now
        sandbox.record(request.record(response.status, fault=fault))
        self._send(response, truncate=fault == "truncate")

    def _read_body(self) -> bytes:
        # Read any body even where it is ignored, or it would be parsed as the next keep-alive request.
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: _Response, truncate: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            # Announce the whole body, send half, hang up: a proxy or network cutting a response short.
            self.wfile.write(response.body[:len(response.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(response.body)


@dataclass
class _Request:
    """A request as routed: what the views read and what its `RequestRecord` keeps."""

    method: str
    raw_path: str
    raw_query: str
    query: dict[str, str]
    headers: Any
    kind: str | None
    args: list[str]

    @classmethod
    def parse(cls, method: str, target: str, headers: Any) -> _Request:
        raw_path, _, raw_query = target.partition("?")
        # The last of a repeated parameter wins, as with Django's QueryDict.get.
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        kind, args = match_route(raw_path) or (None, [])
        return cls(method, raw_path, raw_query, query, headers, kind, args)

    @property
    def paged(self) -> bool:
        return self.kind in ("runs", "tasks")

    @property
    def page(self) -> int:
        return _int_param(self.query, "page", DEFAULT_PAGE)

    @property
    def page_size(self) -> int:
        return _int_param(self.query, "page_size", DEFAULT_PAGE_SIZE)

    def record(self, status: int | None, fault: str | None = None, kind: str | None = None) -> RequestRecord:
        return RequestRecord(self.method, self.raw_path, self.query, status, kind or self.kind,
                             self.args[0] if self.args else None, self.page if self.paged else None,
                             self.page_size if self.paged else None, fault)


def _fault_response(fault: str | None, plan: FaultPlan) -> _Response | None:
    if fault == "500":
        return _Response(500, _DJANGO_500, "text/html")
    if fault in ("502", "503", "504"):
        return _Response(int(fault), _proxy_page(int(fault)), "text/html")
    if fault == "429":
        return _Response(429, _proxy_page(429), "text/html", {"Retry-After": plan.retry_after()})
    if fault == "206":
        return _runs_failed(UPSTREAM_ERROR)
    return None


def _api(sandbox: SandboxServer, request: _Request) -> _Response:
    """Answer an API request in the real service's order: URL resolution (with Django's slash redirect), then
    authentication, then the view."""
    if request.kind is None:
        raw_path = request.raw_path
        if not raw_path.endswith("/") and match_route(raw_path + "/"):
            location = raw_path + "/" + (f"?{request.raw_query}" if request.raw_query else "")
            return _Response(301, content_type="text/html; charset=utf-8", headers={"Location": location})
        return _Response(404, _DJANGO_404, "text/html")
    world = sandbox.world
    denied = _authenticate(world, request.headers.get("Authorization"))
    if denied:
        return denied
    if request.method != "GET":
        return _json(405, {"detail": f'Method "{request.method}" not allowed.'})
    if request.kind == "spaces":
        return _spaces(world, request.headers.get("Org-Handle"))
    token = request.args[0]
    plan = sandbox.faults
    if not world.has_space(token):
        return _business_error(MSG_INVALID_SPACE)
    if token in plan.no_access_spaces:
        return _business_error(MSG_NO_ACCESS)
    if token in plan.always_206 or (request.kind != "space" and token in plan.fail_spaces_upstream):
        return _runs_failed(UPSTREAM_ERROR)
    try:
        return _view(sandbox, request)
    except KeyError:
        # The space was removed while this request was in flight.
        return _business_error(MSG_INVALID_SPACE)


def _view(sandbox: SandboxServer, request: _Request) -> _Response:
    world = sandbox.world
    token = request.args[0]
    if request.kind == "space":
        return _json(200, {"status_code": 200, "message": "Space Fetched Successfully", "data": world.space(token)})
    page, page_size = request.page, request.page_size
    skip = (page - 1) * page_size
    if skip < 0:
        # Inferred: the backend hands skip to its store, which rejects a negative one; its view turns that into
        # the usual 206.
        return _runs_failed("skip must be >= 0")
    # Inferred likewise: a negative limit acts as its absolute value.
    limit = abs(page_size)
    if request.kind == "tasks":
        tasks = world.tasks(token, request.args[1])
        data = orjson.dumps(tasks[skip:skip + limit] if limit else tasks[skip:])
        return _Response(200, _envelope(len(tasks), "Tasks Fetched Successfully", data))
    count, data = world.runs_page(token, skip, limit)
    if sandbox.create_during_paging and page >= 2:
        # Before the answer leaves: the client's next request must already see the new runs.
        world.add_runs(token, sandbox.create_during_paging)
    return _Response(200, _envelope(count, "Runs Fetched Successfully", data))


def _envelope(count: int, message: str, data: bytes) -> bytes:
    return b'{"count":%d,"status_code":200,"message":%s,"data":%s}' % (count, orjson.dumps(message), data)


def _authenticate(world: World, header: str | None) -> _Response | None:
    """DRF's TokenAuthentication, plus the backend's own answer for a revoked token."""
    parts = (header or "").split()
    if not parts or parts[0].lower() != "token":
        return _unauthorized({"message": MSG_NO_CREDENTIALS, "status_code": 401})
    if len(parts) == 1:
        return _unauthorized({"message": "Invalid token header. No credentials provided.", "status_code": 401})
    if len(parts) > 2:
        return _unauthorized({"message": "Invalid token header. Token string should not contain spaces.",
                              "status_code": 401})
    if parts[1] in world.revoked_tokens:
        return _unauthorized({"message": "Unauthorized Access", "error": "Expired Auth Token"})
    if parts[1] != world.api_token:
        return _unauthorized({"message": MSG_INVALID_TOKEN, "status_code": 401})
    return None


def _unauthorized(payload: dict) -> _Response:
    return _json(401, payload, **{"WWW-Authenticate": "Token"})


def _spaces(world: World, org_handle: str | None) -> _Response:
    if not org_handle:
        return _json(400, {"status_code": 400, "message": MSG_ORG_REQUIRED, "data": {}})
    if org_handle != world.org_handle:
        return _json(404, {"message": MSG_ORG_NOT_FOUND})
    with world.lock:
        spaces = [world.space(token) for token in world.space_tokens()]
    return _json(200, {"count": len(spaces), "status_code": 200, "message": "Spaces Fetched Successfully",
                       "data": spaces})


def _admin(sandbox: SandboxServer, method: str, name: str, body: bytes) -> _Response:
    """Drive a sandbox in another process: read the truth and counts, change the world, swap the faults."""
    world = sandbox.world
    try:
        args = orjson.loads(body) if body else {}
        match method, name.rstrip("/"):
            case "GET", "truth":
                return _json(200, world.truth())
            case "GET", "finishes":
                return _json(200, {run_id: moment.isoformat() for run_id, moment in world.finishes().items()})
            case "GET", "stats":
                return _json(200, sandbox.stats())
            case "POST", "advance":
                return _json(200, world.advance(**args))
            case "POST", "reset_counts":
                sandbox.reset_counts()
                return _json(200, {})
            case "POST", "faults":
                sandbox.faults = FaultPlan(**args)
                return _json(200, {})
            case "POST", "add_space":
                return _json(200, {"token": world.add_space(**args)})
            case "POST", "set_status":
                world.set_status(**args)
                return _json(200, {})
    except (TypeError, ValueError, KeyError) as error:
        return _json(400, {"error": f"{type(error).__name__}: {error}"})
    return _json(404, {"error": f"no admin route {method} /_sandbox/{name}"})
