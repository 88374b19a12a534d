"""HTTP client for the Unpod platform API: auth, retries, and the API's error shapes.

It knows nothing of dlt or DuckDB. Every error it raises names the route and page it was on and never
holds the API token, which only ever travels in the ``Authorization`` header.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class UnpodError(Exception):
    """Anything the API did that the pipeline cannot use."""


class ConfigError(UnpodError):
    """Bad or missing configuration: nothing is loaded."""


class AuthError(UnpodError):
    """The API refused the token (401/403): no space can be loaded with it."""


class SpaceError(UnpodError):
    """One space cannot be read: unknown, no access, upstream failure, or a refused token."""


class RequestFailed(UnpodError):
    """A request still failed after every retry, or answered something that is not the API's JSON."""


@dataclass
class RequestStats:
    """Counts shared by every worker thread, for the summary and the load history."""

    requests: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, requests: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries


@dataclass(frozen=True)
class RunsPage:
    """One page of a space's runs, as the server listed them at the moment of the request."""

    space_token: str
    page: int
    page_size: int
    count: int
    items: list[Any]


def space_path_segment(space_token: str) -> str:
    """Percent-encode a space token as exactly one path segment, or refuse it.

    Some tokens are refused rather than encoded: servers decode ``%2F`` before routing and collapse ``.``
    and ``..`` segments, so a token with a slash or made of dots could address another route; control
    characters and empty tokens cannot name a space at all.
    """
    if not space_token or space_token.strip(".") == "":
        raise SpaceError(f"space {space_token!r}: refused, a space token cannot be empty or only dots")
    if "/" in space_token or "\\" in space_token:
        raise SpaceError(f"space {space_token!r}: refused, a space token cannot contain a slash")
    if any(ord(char) < 32 or ord(char) == 127 for char in space_token) or len(space_token) > 256:
        raise SpaceError(f"space {space_token!r}: refused, not a usable space token (control characters or too long)")
    return quote(space_token, safe="")


def check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    """Validate the API root; clear-text HTTP is only for loopback unless the user insists."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base_url {base_url!r} is not an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS and not parts.hostname.startswith("127."):
        if not allow_insecure_http:
            raise ConfigError(
                f"base_url {base_url!r} uses http:// to a non-loopback host: the token would travel in clear. "
                "Use https://, or set SOURCES__UNPOD__ALLOW_INSECURE_HTTP=true if you really mean it."
            )
    return base_url if base_url.endswith("/") else base_url + "/"


class UnpodClient:
    """Talks to one Unpod API root with one token; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        org_handle: str | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_factor: float = 0.5,
        max_retry_delay: float = 30.0,
        stats: RequestStats | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._token = api_token
        self.org_handle = org_handle
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_factor = backoff_factor
        self.max_retry_delay = max_retry_delay
        self.stats = stats or RequestStats()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"UnpodClient(base_url={self.base_url!r}, org_handle={self.org_handle!r})"

    def list_spaces(self) -> list[dict]:
        """Every active space of the organization (one request, no paging)."""
        if not self.org_handle:
            raise ConfigError("org_handle is needed to discover spaces (SOURCES__UNPOD__ORG_HANDLE)")
        body = self._get_json("spaces/", where="spaces list", extra_headers={"Org-Handle": self.org_handle})
        data = body.get("data")
        if not isinstance(data, list):
            raise RequestFailed(f"spaces list: expected a list in 'data', got {type(data).__name__}")
        return data

    def get_space(self, space_token: str) -> dict:
        """One space's fields by token."""
        segment = space_path_segment(space_token)
        body = self._get_json(f"spaces/{segment}/", where=f"space {space_token}", space_token=space_token)
        data = body.get("data")
        if not isinstance(data, dict) or not data:
            raise SpaceError(f"space {space_token}: space details missing from the response")
        return data

    def runs_page(self, space_token: str, page: int, page_size: int) -> RunsPage:
        """One page of a space's runs (1-based offset paging, newest created first)."""
        segment = space_path_segment(space_token)
        where = f"space {space_token} page {page}"
        body = self._get_json(
            f"spaces/{segment}/runs/",
            where=where,
            space_token=space_token,
            params={"page": page, "page_size": page_size},
        )
        items = body.get("data")
        if not isinstance(items, list):
            raise RequestFailed(f"{where}: expected a list of runs in 'data', got {type(items).__name__}")
        count = body.get("count")
        if not isinstance(count, int) or isinstance(count, bool):
            raise RequestFailed(f"{where}: expected an integer 'count', got {count!r}")
        return RunsPage(space_token, page, page_size, count, items)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"Authorization": f"Token {self._token}", "Content-Type": "application/json"})
            self._local.session = session
        return session

    def _get_json(
        self,
        path: str,
        where: str,
        space_token: str | None = None,
        params: dict | None = None,
        extra_headers: dict | None = None,
    ) -> dict:
        """GET with bounded retries on what is transient; raise a named error for everything else."""
        url = self.base_url + path
        last_problem = ""
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                self.stats.add(retries=1)
            self.stats.add(requests=1)
            retry_after: float | None = None
            try:
                response = self._session().get(url, params=params, headers=extra_headers, timeout=self.timeout)
                body_bytes = response.content
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                last_problem = f"connection problem ({type(exc).__name__})"
            else:
                status = response.status_code
                if status in AUTH_STATUSES:
                    raise AuthError(f"{where}: the API refused the token (HTTP {status}: {_message(body_bytes)})")
                if status in RETRY_STATUSES:
                    last_problem = f"HTTP {status}"
                    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                elif status == 200:
                    try:
                        body = orjson.loads(body_bytes)
                    except orjson.JSONDecodeError:
                        last_problem = f"HTTP 200 with a body that is not JSON ({len(body_bytes)} bytes)"
                    else:
                        if not isinstance(body, dict):
                            raise RequestFailed(f"{where}: expected a JSON object, got {type(body).__name__}")
                        return body
                elif status in (206, 404) and space_token is not None:
                    # Unpod answers 206 for an unknown space, no access and upstream failure; its docs say 404.
                    raise SpaceError(f"space {space_token}: {_message(body_bytes)} (HTTP {status}, {where})")
                elif status in (400, 404) and space_token is None:
                    # Only the spaces list has no space: a missing or unknown organization handle.
                    raise ConfigError(f"{where}: {_message(body_bytes)} (HTTP {status}); check SOURCES__UNPOD__ORG_HANDLE")
                else:
                    raise RequestFailed(f"{where}: HTTP {status}: {_message(body_bytes)}")
            if attempt < self.max_attempts:
                delay = self._delay(attempt, retry_after)
                log.warning("event=retry where=%r attempt=%d problem=%r wait_s=%.2f", where, attempt, last_problem, delay)
                time.sleep(delay)
        raise RequestFailed(f"{where}: gave up after {self.max_attempts} attempts, last: {last_problem}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_delay)
        backoff = self.backoff_factor * (2 ** (attempt - 1))
        return min(backoff * (0.5 + random.random() / 2), self.max_retry_delay)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _message(body: bytes) -> str:
    """The API's own words for an error: its JSON ``message`` (and ``error``), or a short excerpt."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:80].decode("utf-8", "replace").strip().replace("\n", " ")
        return f"non-JSON body: {text!r}" if text else "empty body"
    if isinstance(parsed, dict):
        parts = [str(parsed[key]) for key in ("message", "error", "detail") if parsed.get(key)]
        if parts:
            return "; ".join(parts)
    return repr(parsed)[:80]
