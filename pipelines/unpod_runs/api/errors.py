"""What can go wrong reading Unpod, by kind: each kind tells its caller what to do about it.

Every message names what was wrong and where (route, space, page, URL) and what to check, and never holds the API
token.
"""

from __future__ import annotations


class UnpodError(Exception):
    """Anything the API did that the pipeline cannot use."""


class ConfigError(UnpodError):
    """Bad or missing configuration (a wrong base URL too): nothing is loaded."""


class AuthError(UnpodError):
    """The API refused the token (401/403): no space can be loaded with it."""


class SpaceError(UnpodError):
    """One space cannot be read: unknown, no access, or an answer the pipeline does not know."""


class RequestFailed(UnpodError):
    """A request still failed after every retry, or answered something that is not the API's JSON."""


class SpacesUnavailable(UnpodError):
    """The organization's spaces could not be listed: without them no space can be read tonight."""
