"""HTTP client for the Unpod platform API: auth, retries, and the API's error shapes.

It knows nothing of dlt or DuckDB. Every error it raises names the route, page and URL it was on and what to
check, and never holds the API token, which only ever travels in the ``Authorization`` header.

Every answer is judged in one place, ``_judge``, by kind:

* transient (connection errors, timeouts, 429, 5xx, a 200 whose body is not the API's JSON, 206 "Runs Fetch
  Failed"): retried with exponential backoff (or after ``Retry-After``) up to ``max_attempts``;
* permanent (401/403, 206 "Invalid Space Token" or "You Don't have Access...", a 404, a 400): raised at once;
* a 206 with a message the API is not known to send: retried once, then raised with that message.

dlt's ``dlt.sources.helpers.requests`` retries 429, 5xx and connection errors too, but with one attempt
budget for every kind and only on status codes and exceptions: it cannot tell the API's transient 206 from its
permanent ones, give an unknown one a single retry, or judge a 200 by its body; and it honours ``Retry-After``
only as whole seconds. Hence this client.

It speaks HTTP through urllib3 (the library under ``requests``) directly: ``requests`` adds about half a millisecond
of CPU to every request (preparing, merging settings, checking the CA path on disk), and a quiet night makes
thousands of small requests.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import orjson
import urllib3

from unpod_runs.api.errors import AuthError, ConfigError, RequestFailed, SpaceError, UnpodError

log = logging.getLogger(__name__)

AUTH_STATUSES = frozenset({401, 403})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
UPSTREAM_FAILURE = "Runs Fetch Failed"
SPACE_REFUSALS = {
    "Invalid Space Token": "no such space: check the token in SOURCES__UNPOD__SPACE_TOKENS or --space",
    "You Don't have Access": "the token's user has no access to this space",
}
UNKNOWN_206_ATTEMPTS = 2
API_ROOT_HINT = "check SOURCES__UNPOD__BASE_URL (the API root, like https://unpod.ai/api/v2/platform/)"
DEFAULT_TIMEOUT = 30.0
# Six attempts: at 15% random faults a request still fails for good about once in a hundred thousand.
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_MAX_RETRY_DELAY = 30.0


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
    date: datetime | None = None  # the response's HTTP Date (UTC): the API's clock when it listed these runs


@dataclass(frozen=True)
class _Retry:
    """A transient answer: what went wrong, when to try again, and how many attempts this kind deserves."""

    problem: str
    retry_after: float | None = None
    attempts: int | None = None  # None: the client's max_attempts
    give_up: Callable[[int], UnpodError] | None = None  # the error after the last attempt, by attempts made


@dataclass(frozen=True)
class _Request:
    """Where a request goes and how its answer is read; ``shape`` names what a good body lacks, or None."""

    url: str
    where: str
    space_token: str | None = None
    params: dict | None = None
    headers: dict | None = None
    shape: Callable[[dict], str | None] = lambda body: None


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
        raise ConfigError(f"base_url {base_url!r} is not an http(s) URL; {API_ROOT_HINT}")
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
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY,
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
        self._pool: urllib3.PoolManager | None = None
        self._pool_lock = threading.Lock()
        self._runs_urls: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"UnpodClient(base_url={self.base_url!r}, org_handle={self.org_handle!r})"

    def list_spaces(self) -> list[dict]:
        """Every active space of the organization (one request, no paging)."""
        if not self.org_handle:
            raise ConfigError("org_handle is needed to discover spaces (SOURCES__UNPOD__ORG_HANDLE)")
        body = self._get_json(_Request(
            self.base_url + "spaces/", "spaces list", headers={"Org-Handle": self.org_handle},
            shape=lambda body: _not_a(list, body, "data"),
        ))
        return body["data"]

    def get_space(self, space_token: str) -> dict:
        """One space's fields by token."""
        segment = space_path_segment(space_token)
        body = self._get_json(_Request(self.base_url + f"spaces/{segment}/", f"space {space_token}", space_token))
        data = body.get("data")
        if not isinstance(data, dict) or not data:
            raise SpaceError(f"space {space_token}: space details missing from the response")
        return data

    def runs_page(self, space_token: str, page: int, page_size: int) -> RunsPage:
        """One page of a space's runs (1-based offset paging, newest created first)."""
        body, headers = self._get(_Request(
            self._runs_url(space_token), f"space {space_token} page {page}", space_token,
            params={"page": page, "page_size": page_size},
            shape=lambda body: _not_a(list, body, "data") or _not_a(int, body, "count"),
        ))
        return RunsPage(space_token, page, page_size, body["count"], body["data"], _http_date(headers.get("Date")))

    def _runs_url(self, space_token: str) -> str:
        url = self._runs_urls.get(space_token)
        if url is None:
            url = self._runs_urls[space_token] = self.base_url + f"spaces/{space_path_segment(space_token)}/runs/"
        return url

    def _connections(self) -> urllib3.PoolManager:
        """One thread-safe connection pool, with the environment's proxy and CA settings read once."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = _pool_for(self.base_url)
            return self._pool

    def _get_json(self, request: _Request) -> dict:
        return self._get(request)[0]

    def _get(self, request: _Request) -> tuple[dict, Any]:
        """GET with bounded retries on what is transient; raise a named error for everything else.

        Returns the judged body and the response's headers."""
        attempt = 0
        while True:
            attempt += 1
            self.stats.add(requests=1, retries=1 if attempt > 1 else 0)
            try:
                response = self._connections().request(
                    "GET", request.url, fields=request.params,
                    headers={**self._headers(), **(request.headers or {})},
                    timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout), retries=_NO_RETRIES,
                )
                body = response.data
            except urllib3.exceptions.HTTPError as exc:
                verdict: dict | _Retry = _connection_problem(exc, request, self.timeout)
            else:
                verdict = _judge(response.status, response.headers, body, request, self.org_handle)
            if isinstance(verdict, dict):
                return verdict, response.headers
            attempts = min(verdict.attempts or self.max_attempts, self.max_attempts)
            if attempt >= attempts:
                if verdict.give_up is not None:
                    raise verdict.give_up(attempt)
                raise RequestFailed(
                    f"{request.where}: gave up after {attempt} attempts ({request.url}), last: {verdict.problem}"
                )
            delay = self._delay(attempt, verdict.retry_after)
            log.warning("event=retry where=%r attempt=%d problem=%r wait_s=%.2f",
                        request.where, attempt, verdict.problem, delay)
            time.sleep(delay)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self._token}", "Content-Type": "application/json"}

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_delay)
        backoff = self.backoff_factor * (2 ** (attempt - 1))
        return min(backoff * (0.5 + random.random() / 2), self.max_retry_delay)


# The client retries by kind itself (``_get``); urllib3 only follows redirects, as a browser or requests would.
_NO_RETRIES = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=10, raise_on_status=False)


def _pool_for(base_url: str) -> urllib3.PoolManager:
    """A pool for the API root: through the environment's proxy unless NO_PROXY exempts the host; TLS verified
    against REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when set, else certifi's bundle (as requests does)."""
    parts = urlsplit(base_url)
    ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    options = {"maxsize": 32, "ca_certs": ca_certs, "cert_reqs": "CERT_REQUIRED"}
    proxy = getproxies().get(parts.scheme)
    if proxy and not proxy_bypass(parts.hostname or ""):
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


def _judge(status: int, headers: Any, body: bytes, request: _Request, org_handle: str | None) -> dict | _Retry:
    """The one place that decides what an answer means: the body to use, a retry, or a raised error."""
    where, url = request.where, request.url
    if status in AUTH_STATUSES:
        raise AuthError(
            f"{where}: authentication failed (unauthorized), the API refused the token "
            f"(HTTP {status} {_reason(status)}: {_message(body)}); check SOURCES__UNPOD__API_TOKEN"
        )
    if status == 429:
        return _Retry("HTTP 429 Too Many Requests", retry_after=_retry_after_seconds(headers.get("Retry-After")))
    if status >= 500:
        return _Retry(f"HTTP {status} {_reason(status)}: {_message(body)}")
    if status == 200:
        parsed = _json_object(body)
        if parsed is None:
            # A proxy's or a web site's page: the API itself always answers a JSON object.
            return _Retry(f"HTTP 200 with a body that is not the API's JSON ({_excerpt(body)}); is {url} the API? "
                          f"{API_ROOT_HINT}")
        problem = request.shape(parsed)
        if problem is None:
            return parsed
        return _Retry(f"HTTP 200 with JSON that is not the API's answer ({problem}: {_excerpt(body)})")
    parsed = _json_object(body)
    if status == 404 and parsed is None:
        # Django's HTML 404: no route matched, so the path is wrong, whatever the token, space or handle.
        raise ConfigError(f"{where}: HTTP 404 with an HTML page from {url}: the URL path is wrong; {API_ROOT_HINT}")
    if status == 206:
        return _business_error(_message(body), request)
    if request.space_token is None and status in (400, 404):
        # Only the spaces list has no space: a missing or unknown organization handle.
        raise ConfigError(
            f"{where}: {_message(body)} (HTTP {status}); check SOURCES__UNPOD__ORG_HANDLE ({org_handle!r})"
        )
    if status == 404:
        raise SpaceError(f"space {request.space_token}: {_message(body)} (HTTP 404, {where})")
    raise RequestFailed(f"{where}: HTTP {status} {_reason(status)} from {url}: {_message(body)}")


def _business_error(message: str, request: _Request) -> _Retry:
    """The API's 206: an upstream failure is transient, a refusal is not, an unknown one gets one more try."""
    subject = f"space {request.space_token}" if request.space_token else request.where

    def error(kind: type[UnpodError], note: str) -> UnpodError:
        return kind(f"{subject}: {message} (HTTP 206, {request.where}){note}")

    if message.startswith(UPSTREAM_FAILURE):
        return _Retry(f"HTTP 206 {message}", give_up=lambda attempts: error(
            RequestFailed, f"; an upstream failure, still there after {attempts} attempts"))
    for refusal, meaning in SPACE_REFUSALS.items():
        if message.startswith(refusal):
            raise error(SpaceError, f": {meaning}")
    return _Retry(f"HTTP 206 {message}", attempts=UNKNOWN_206_ATTEMPTS, give_up=lambda attempts: error(
        SpaceError, f"; not an answer the pipeline knows, still there after {attempts} attempts"))


def _connection_problem(exc: urllib3.exceptions.HTTPError, request: _Request, timeout: float) -> _Retry:
    """Name the host, port and cause; a TLS mismatch is a configuration error, not worth a retry."""
    parts = urlsplit(request.url)
    host = parts.hostname or "?"
    endpoint = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    causes = list(_causes(exc))
    text = " ".join(str(cause) for cause in causes)
    if any(isinstance(cause, (ssl.SSLError, urllib3.exceptions.SSLError)) for cause in causes):
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text or "record layer failure" in text:
            raise ConfigError(
                f"{request.where}: TLS handshake with {endpoint} failed: this port speaks plain HTTP, not HTTPS "
                f"({request.url}); in SOURCES__UNPOD__BASE_URL use http:// for a local sandbox, or the HTTPS port"
            )
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            raise ConfigError(
                f"{request.where}: the TLS certificate of {host} is not trusted ({request.url}); "
                f"check the host in SOURCES__UNPOD__BASE_URL"
            )
        return _Retry(f"TLS error with {endpoint} ({_last_words(causes)})")
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return _Retry(f"connection refused by {endpoint}: nothing listens there; check the host and port in "
                      f"SOURCES__UNPOD__BASE_URL")
    if "NameResolutionError" in repr(causes) or "Failed to resolve" in text:
        return _Retry(f"cannot resolve host {host!r}; check SOURCES__UNPOD__BASE_URL")
    if any(isinstance(cause, urllib3.exceptions.ConnectTimeoutError) for cause in causes):
        return _Retry(f"no connection to {endpoint} within {timeout:g} s (connect timeout)")
    if any(isinstance(cause, (urllib3.exceptions.TimeoutError, TimeoutError)) for cause in causes):
        return _Retry(f"no answer from {endpoint} within {timeout:g} s (read timeout)")
    if any(isinstance(cause, (http.client.RemoteDisconnected, ConnectionResetError)) for cause in causes):
        return _Retry(f"{endpoint} closed the connection without answering")
    if any(isinstance(cause, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead,
                              urllib3.exceptions.InvalidChunkLength)) for cause in causes):
        return _Retry(f"{endpoint} cut the response short ({_last_words(causes)})")
    return _Retry(f"connection to {endpoint} failed ({_last_words(causes)})")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: urllib3 nests the socket's error several levels deep."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in nested if isinstance(item, BaseException))


def _last_words(causes: list[BaseException]) -> str:
    innermost = causes[-1]
    return f"{type(innermost).__name__}: {innermost}"[:200]


def _http_date(value: str | None) -> datetime | None:
    """An HTTP date header as a UTC datetime; None when absent or unparseable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (fractions too) or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _not_a(kind: type, body: dict, key: str) -> str | None:
    value = body.get(key)
    if isinstance(value, kind) and not isinstance(value, bool):
        return None
    return f"{key!r} is not a {'list' if kind is list else 'number'}"


def _json_object(body: bytes) -> dict | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _excerpt(body: bytes) -> str:
    text = body[:60].decode("utf-8", "replace").strip().replace("\n", " ")
    return repr(text) if text else "empty body"


def _message(body: bytes) -> str:
    """The API's own words for an error: its JSON ``message`` (and ``error``), or a short excerpt."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"non-JSON body: {_excerpt(body)}"
    if isinstance(parsed, dict):
        parts = [str(parsed[key]) for key in ("message", "error", "detail") if parsed.get(key)]
        if parts:
            return "; ".join(parts)
    return repr(parsed)[:80]
