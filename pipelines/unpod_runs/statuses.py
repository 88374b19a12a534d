"""The run statuses the API is known to send, which of them end a run (SPEC.md), and the phase of each open one.

The one definition in Python; ``sql/staging/stg_known_statuses.sql`` is the one in SQL (``int_runs`` classifies
every run by it, and the models and checks read that), and a test keeps the two equal. Any other status, unknown ones and none too, is open.
"""

OPEN_STATUSES = ("pending", "scheduled", "in_progress", "hold", "running")
TERMINAL_STATUSES = ("completed", "failed", "partially_completed")
FAILED_STATUS = "failed"
KNOWN_STATUSES = OPEN_STATUSES + TERMINAL_STATUSES
# What an open status says a run is doing: waiting to start, running, or held. An open status not listed (an unknown
# one, or none) is in phase "other".
PHASES = {"pending": "queued", "scheduled": "queued", "running": "running", "in_progress": "running", "hold": "held"}


def sql_list(statuses: tuple[str, ...]) -> str:
    """The statuses as a SQL list literal, for a query over ``unpod.runs`` that cannot read the models."""
    return "(" + ", ".join(f"'{status}'" for status in statuses) + ")"
