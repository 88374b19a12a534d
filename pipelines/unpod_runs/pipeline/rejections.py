"""The rejected run items of a load, told by space, page and field, as the load's warning needs them.

For example ``space X page 3: run_id missing (1), created 'not-a-date' (1)``; the items themselves, with
their raw JSON, are in ``unpod.runs_rejected``.
"""

from __future__ import annotations

from collections import Counter

MAX_LINES = 20
MAX_REASONS_PER_LINE = 5
_UNPARSEABLE = " does not parse"


class Rejections:
    """Counts of rejected items per (space, page, reason), filled as pages arrive."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int, str]] = Counter()

    def add(self, rows: list[dict]) -> None:
        for row in rows:
            self._counts[(row["space_token"], row["page"], _short(row["reason"]))] += 1

    def lines(self) -> list[str]:
        """One line per space and page, most pages first; at most ``MAX_LINES`` of them."""
        pages: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for (space, page, reason), count in self._counts.items():
            pages.setdefault((space, page), []).append((reason, count))
        lines = []
        for (space, page), reasons in sorted(pages.items())[:MAX_LINES]:
            reasons.sort(key=lambda item: (-item[1], item[0]))
            shown = ", ".join(f"{reason} ({count})" for reason, count in reasons[:MAX_REASONS_PER_LINE])
            more = len(reasons) - MAX_REASONS_PER_LINE
            lines.append(f"space {space} page {page}: {shown}" + (f", and {more} other reasons" if more > 0 else ""))
        if len(pages) > MAX_LINES:
            lines.append(f"and {len(pages) - MAX_LINES} more pages")
        return lines


def _short(reason: str) -> str:
    """The field and what is wrong with it: ``no run_id`` -> ``run_id missing``, a bad value -> the field and value."""
    if reason == "no run_id":
        return "run_id missing"
    if reason.endswith(_UNPARSEABLE):
        return reason[: -len(_UNPARSEABLE)]
    return reason
