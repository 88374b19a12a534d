"""Settings, resolved by dlt's own providers: environment, then ``.dlt/secrets.toml`` and ``.dlt/config.toml``."""

from __future__ import annotations

import json
import os
import re
import tomllib
from typing import Any, List, Optional

import dlt

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationException,
    ConfigValueCannotBeCoercedException,
)
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from unpod_runs.api.client import DEFAULT_BACKOFF_FACTOR, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_RETRY_DELAY, DEFAULT_TIMEOUT
from unpod_runs.api.errors import ConfigError

DEFAULT_BASE_URL = "https://unpod.ai/api/v2/platform/"
# Chosen by benchmarks/bench.py (--sweep-page-size, --sweep-workers): past 1000 runs a page the requests
# saved no longer shorten a night, while re-reading the page of one open run keeps getting dearer.
DEFAULT_PAGE_SIZE = 1000
DEFAULT_WORKERS = 8
# What one request costs, in runs served: the planner joins reads of nearby runs while the runs between them cost
# less than the request saved. A small request against the sandbox on loopback costs about 160 runs' worth.
DEFAULT_REQUEST_COST_RUNS = 200
_KIND_NAMES = {"int": "whole number", "float": "number", "bool": "boolean (true or false)"}


@configspec
class UnpodSettings(BaseConfiguration):
    api_token: TSecretStrValue = None
    base_url: str = DEFAULT_BASE_URL
    org_handle: Optional[str] = None
    space_tokens: Optional[Any] = None
    page_size: int = DEFAULT_PAGE_SIZE
    workers: int = DEFAULT_WORKERS
    request_cost_runs: int = DEFAULT_REQUEST_COST_RUNS
    allow_insecure_http: bool = False
    request_timeout: float = DEFAULT_TIMEOUT
    request_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    request_backoff_factor: float = DEFAULT_BACKOFF_FACTOR
    request_max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY

    def __repr__(self) -> str:
        return f"UnpodSettings(base_url={self.base_url!r}, org_handle={self.org_handle!r})"


def load_settings(space_tokens: List[str] | None = None) -> UnpodSettings:
    """Resolve ``sources.unpod`` settings; ``space_tokens`` (from ``--space``) overrides the configured list."""
    try:
        settings = resolve_configuration(UnpodSettings(), sections=("sources", "unpod"))
    except ConfigFieldMissingException as exc:
        missing = ", ".join(f"SOURCES__UNPOD__{name.upper()}" for name in exc.fields)
        raise ConfigError(f"missing configuration: {missing}; looked in the environment and in {settings_folder()}") from None
    except ConfigValueCannotBeCoercedException as exc:
        kind = getattr(exc.hint, "__name__", str(exc.hint))
        shown = "" if exc.field_name == "api_token" else f" {str(exc.field_value)[:40]!r}"
        raise ConfigError(
            f"SOURCES__UNPOD__{exc.field_name.upper()}{shown} is not a {_KIND_NAMES.get(kind, kind)}"
        ) from None
    except ConfigurationException as exc:
        raise ConfigError(f"bad configuration: {exc}") from None
    settings.space_tokens = space_tokens or parse_space_tokens(settings.space_tokens)
    check_source_settings(settings.org_handle, settings.space_tokens, settings.page_size, settings.workers)
    return settings


def check_source_settings(org_handle: str | None, space_tokens: list[str] | None, page_size: int, workers: int) -> None:
    """Refuse settings the source cannot work with, before anything is read."""
    if not space_tokens and not org_handle:
        raise ConfigError(
            "set SOURCES__UNPOD__ORG_HANDLE (discover spaces) or SOURCES__UNPOD__SPACE_TOKENS (a list); "
            f"looked in the environment and in {settings_folder()}"
        )
    if page_size < 1:
        raise ConfigError(f"page_size must be at least 1, got {page_size}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")


def settings_folder() -> str:
    """Where dlt looked for its ``.dlt/`` folder, said so that a job started from another folder knows what to fix."""
    folder = os.path.abspath(dlt.current.run_context().settings_dir)
    if not os.path.isdir(folder):
        return (f"{folder}, which does not exist: dlt reads .dlt/ in the working directory, or in DLT_PROJECT_DIR "
                f"when set; run from the project folder or set DLT_PROJECT_DIR to it")
    return f"[sources.unpod] of {folder}/secrets.toml and {folder}/config.toml"


SPACE_TOKENS_FORMS = "a TOML list ['A', 'B'], a JSON list [\"A\", \"B\"], or A,B (commas or spaces between tokens)"
_PLAIN_TOKENS = re.compile(r"[^\[\]'\"]*")


def parse_space_tokens(value: Any) -> list[str] | None:
    """Accept a list (from a TOML file), or a string holding a TOML list, a JSON list, or tokens between commas."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = _tokens_from_text(value.strip())
    if not isinstance(value, list) or not all(isinstance(token, str) for token in value):
        raise ConfigError(f"SOURCES__UNPOD__SPACE_TOKENS must be a list of space tokens: {SPACE_TOKENS_FORMS}")
    return value or None


def _tokens_from_text(text: str) -> Any:
    if text.startswith("["):
        try:
            return tomllib.loads(f"tokens = {text}")["tokens"]
        except tomllib.TOMLDecodeError:
            pass
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    elif _PLAIN_TOKENS.fullmatch(text):
        return [part for part in re.split(r"[,\s]+", text) if part]
    raise ConfigError(f"SOURCES__UNPOD__SPACE_TOKENS {text[:80]!r} is not a list of space tokens; "
                      f"accepted forms: {SPACE_TOKENS_FORMS}")
