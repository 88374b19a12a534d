"""Figures as the report writes them: durations in the largest unit that fits, rates as percentages, counts
with thousands separators, and the group of runs without a collection_ref by name."""

from __future__ import annotations

NO_COLLECTION = "(no collection_ref)"


UTC_FORMAT = "%Y-%m-%d %H:%M UTC"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    for limit, divisor, unit in ((120, 1, "s"), (7200, 60, "min"), (172800, 3600, "h")):
        if abs(seconds) < limit:
            return f"{seconds / divisor:.3g} {unit}"
    return f"{seconds / 86400:.3g} d"


def duration_unit(max_seconds: float) -> tuple[float, str]:
    for limit, divisor, unit in ((120, 1, "seconds"), (7200, 60, "minutes"), (172800, 3600, "hours")):
        if max_seconds < limit:
            return divisor, unit
    return 86400, "days"


def format_rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def format_count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def collection_name(name: str | None) -> str:
    return NO_COLLECTION if name is None else name


def format_bracket(low: float | None, high: float | None) -> str:
    """A time known only within bounds, as "low – high" (one value when they agree)."""
    if low is None and high is None:
        return "–"
    if low == high:
        return format_duration(low)
    return f"{format_duration(low)} – {format_duration(high)}"
