"""Hand-built inline SVG: a chart is a viewBox WIDTH units wide, drawn at the width of its section (about 1:1 on a
desktop, scaled down with its text on a narrow screen).

Text is SVG text in the page's font; its width is estimated from Arial's advance widths (a little generously), which
is all the layout needs: margins for the axis labels, room for the value labels, and where a legend starts.
"""

from __future__ import annotations

import html
import math
from typing import Any

COLOURS = {
    "completed": "#3b8f5a",
    "partially_completed": "#e3a33b",
    "failed": "#c8453b",
    "open": "#b8bec6",
    "p50": "#2f5f9e",
    "p95": "#a9c1e3",
    "text": "#2b2f36",
    "muted": "#6b7280",
    "grid": "#e6e8eb",
}
WIDTH = 1000
FONT_SIZE = 12.5
LABEL_SIZE = 12

# Arial's advance widths of printable ASCII, in thousandths of the font size; other characters count as 0.6.
_ADVANCE = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667,
    556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556,
    556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722,
    500, 500, 500, 334, 260, 334, 584,
)


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """The width of ``text`` in a sans-serif font, over- rather than underestimated (fonts differ)."""
    thousandths = sum(_ADVANCE[ord(char) - 32] if 32 <= ord(char) < 127 else 600 for char in text)
    return thousandths * size / 1000 * 1.08


def fit(text: str, width: float, size: float = FONT_SIZE) -> str:
    """``text``, cut with an ellipsis to fit ``width``."""
    if text_width(text, size) <= width:
        return text
    text = text[:int(width / (size * 0.2))]    # no character is narrower: a huge name costs no more than a short one
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def number(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zero."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _attributes(attributes: dict[str, Any]) -> str:
    return "".join(
        f' {name.replace("_", "-")}="{number(value) if isinstance(value, float) else html.escape(str(value))}"'
        for name, value in attributes.items()
        if value is not None
    )


def text(x: float, y: float, content: str, tooltip: str | None = None, **attributes: Any) -> str:
    """A text vertically centred on ``y``; ``content`` (and the tooltip) escaped here."""
    title = f"<title>{html.escape(tooltip)}</title>" if tooltip else ""
    attributes = {"x": float(x), "y": float(y), "dy": "0.35em", **attributes}
    return f"<text{_attributes(attributes)}>{title}{html.escape(content)}</text>"


def rect(x: float, y: float, width: float, height: float, fill: str, **attributes: Any) -> str:
    return (
        f'<rect x="{number(x)}" y="{number(y)}" width="{number(max(width, 0))}" height="{number(max(height, 0))}" '
        f'fill="{fill}"{_attributes(attributes)}/>'
    )


def line(x1: float, y1: float, x2: float, y2: float, stroke: str, **attributes: Any) -> str:
    return (f'<line x1="{number(x1)}" y1="{number(y1)}" x2="{number(x2)}" y2="{number(y2)}" stroke="{stroke}"'
            f'{_attributes(attributes)}/>')


def axes(left: float, top: float, right: float, bottom: float) -> list[str]:
    """The left and bottom edges of a plot area."""
    return [line(left, top, left, bottom, COLOURS["grid"]), line(left, bottom, right, bottom, COLOURS["grid"])]


def polyline(points: list[tuple[float, float]], stroke: str, width: float, markers: bool) -> str:
    path = " ".join(f"{number(x)},{number(y)}" for x, y in points)
    drawn = (f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="{number(width)}" '
             'stroke-linejoin="round" stroke-linecap="round"/>')
    if not markers:
        return drawn
    circles = "".join(f'<circle cx="{number(x)}" cy="{number(y)}" r="2.6"/>' for x, y in points)
    return f'{drawn}<g fill="{stroke}">{circles}</g>'


def figure(height: float, label: str, parts: list[str]) -> str:
    """The chart: scaled to the width of its section, text in the page's font, overflow shown rather than cut."""
    return (
        f'<svg viewBox="0 0 {WIDTH} {number(height)}" width="100%" role="img" aria-label="{html.escape(label)}" '
        f'font-size="{FONT_SIZE}" fill="{COLOURS["text"]}" overflow="visible">' + "".join(parts) + "</svg>"
    )


def ticks(top: float, bins: int = 6, integer: bool = False) -> tuple[list[float], float]:
    """Round ticks from 0 to at most ``top`` (steps of 1, 2 or 5 × 10ⁿ), and the step."""
    top = top if top > 0 else 1.0
    raw = top / bins
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(multiple * magnitude for multiple in (1, 2, 5, 10) if multiple * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, float(round(step)))
    return [index * step for index in range(int(top / step + 1e-9) + 1)], step


def decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def legend(items: list[tuple[str, str, str]], centre: float, y: float, anchor: str = "middle") -> list[str]:
    """One row of legend entries ``(kind, colour, label)``, kind "box" or "line", centred on (or ending at) x."""
    widths = [22 + text_width(label, LABEL_SIZE) for _, _, label in items]
    total = sum(widths) + 18 * (len(items) - 1)
    x = centre - total / 2 if anchor == "middle" else centre - total
    parts = []
    for (kind, colour, label), width in zip(items, widths):
        if kind == "box":
            parts.append(rect(x, y - 5, 16, 10, colour))
        else:
            parts.append(line(x, y, x + 16, y, colour, stroke_width=1.6))
            parts.append(f'<circle cx="{number(x + 8)}" cy="{number(y)}" r="2.6" fill="{colour}"/>')
        parts.append(text(x + 22, y, label, font_size=LABEL_SIZE))
        x += width + 18
    return parts
