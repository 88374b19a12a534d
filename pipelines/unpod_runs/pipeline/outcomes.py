"""How a load ended: its exit code and the outcome ``unpod.load_history`` records, by one rule.

``load --help``, the load history and the summary all read it here; README's table of exit codes says the same
in more words, and a test keeps it so. Light on imports: ``--help`` reads it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_SPACES_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3

EXIT_CODES = {
    EXIT_OK: "every space loaded",
    EXIT_SPACES_FAILED: "some spaces failed, run items were rejected, a data check failed or the publish failed "
                        "(the rest is loaded)",
    EXIT_CONFIG: "configuration or token refused (nothing changed)",
    EXIT_LOCKED: "another load (or models) is writing this database",
}


def load_exit_code(spaces_failed: bool, items_rejected: bool, checks_failed: bool, published: bool) -> int:
    """A load exits 0 only when nothing at all went wrong; any trouble after the configuration was accepted is 1."""
    trouble = spaces_failed or items_rejected or checks_failed or not published
    return EXIT_SPACES_FAILED if trouble else EXIT_OK


def load_outcome(exit_code: int, spaces_loaded: int) -> str:
    """``ok`` exactly when the load exits 0; ``partial`` when it exits 1 with a space loaded; ``failed`` otherwise."""
    if exit_code == EXIT_OK:
        return "ok"
    return "partial" if spaces_loaded else "failed"


def exit_codes_help() -> str:
    """The exit codes as one line of ``--help``."""
    return "exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."
