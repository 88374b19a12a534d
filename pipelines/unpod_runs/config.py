"""Settings, resolved by dlt's own providers: environment, then ``.dlt/secrets.toml`` and ``.dlt/config.toml``."""

from __future__ import annotations

import json
from typing import Any, List, Optional

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigFieldMissingException, ConfigurationException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from .client import ConfigError

DEFAULT_BASE_URL = "https://unpod.ai/api/v2/platform/"
# Chosen by benchmarks/bench.py (--sweep-page-size, --sweep-workers): past 1000 runs a page the requests
# saved no longer shorten a night, while re-reading the page of one open run keeps getting dearer.
DEFAULT_PAGE_SIZE = 1000
DEFAULT_WORKERS = 8
# What one request costs, in runs served: the planner joins reads of nearby runs while the runs between them cost
# less than the request saved. Measured with benchmarks/bench.py against the sandbox; see the README.
DEFAULT_REQUEST_COST_RUNS = 200


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
    request_timeout: float = 30.0
    request_max_attempts: int = 5
    request_backoff_factor: float = 0.5

    def __repr__(self) -> str:
        return f"UnpodSettings(base_url={self.base_url!r}, org_handle={self.org_handle!r})"


def load_settings(space_tokens: List[str] | None = None) -> UnpodSettings:
    """Resolve ``sources.unpod`` settings; ``space_tokens`` (from ``--space``) overrides the configured list."""
    try:
        settings = resolve_configuration(UnpodSettings(), sections=("sources", "unpod"))
    except ConfigFieldMissingException as exc:
        missing = ", ".join(f"SOURCES__UNPOD__{name.upper()}" for name in exc.fields)
        raise ConfigError(f"missing configuration: {missing} (environment, or [sources.unpod] in .dlt/secrets.toml)") from None
    except ConfigurationException as exc:
        raise ConfigError(f"bad configuration: {exc}") from None
    settings.space_tokens = space_tokens or parse_space_tokens(settings.space_tokens)
    if not settings.space_tokens and not settings.org_handle:
        raise ConfigError("set SOURCES__UNPOD__ORG_HANDLE (discover spaces) or SOURCES__UNPOD__SPACE_TOKENS (a list)")
    if settings.page_size < 1:
        raise ConfigError(f"page_size must be at least 1, got {settings.page_size}")
    if settings.workers < 1:
        raise ConfigError(f"workers must be at least 1, got {settings.workers}")
    return settings


def parse_space_tokens(value: Any) -> list[str] | None:
    """Accept a TOML list, a JSON list, or a comma-separated string."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError("SOURCES__UNPOD__SPACE_TOKENS is not a valid JSON list") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(token, str) for token in value):
        raise ConfigError("SOURCES__UNPOD__SPACE_TOKENS must be a list of space tokens")
    return value or None
