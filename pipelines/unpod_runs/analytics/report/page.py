"""The page around the sections: the headline cards, the highlights, and the one self-contained HTML document
(inline CSS, no script, no external URL) that holds them."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone

from unpod_runs.analytics.report.formatting import (
    UTC_FORMAT,
    collection_name,
    format_count,
    format_duration,
    format_rate,
)


@dataclass(frozen=True)
class Section:
    """A titled part of the page; its caption says what it shows and which mart it comes from."""

    title: str
    caption: str
    body: str


def empty(message: str) -> str:
    """What a section says instead of a chart or table when it has nothing to show."""
    return f'<p class="empty">{html.escape(message)}</p>'


def highlights(headline: dict, collections: list[dict], trends: list[dict], stuck: list[dict]) -> list[str]:
    """The notes at the top of the page: what got worse, what is stuck, the worst and slowest collections."""
    if not headline["total_runs"]:
        return ["No runs are loaded yet: run <code>unpod-runs load</code> first."]
    notes = []
    regressions = [row for row in trends if row["is_regression"]]
    if regressions:
        names = ", ".join(f"<strong>{html.escape(collection_name(row['collection_ref']))}</strong>"
                          for row in regressions[:5])
        more = f" and {len(regressions) - 5} more" if len(regressions) > 5 else ""
        notes.append(f"Got worse this week: {names}{more} (see Trends).")
    if headline["unchanged_a_day_runs"]:
        longest = stuck[0]  # the stuck runs come unchanged longest first
        notes.append(
            f"Stuck the longest: run <code>{html.escape(longest['run_id'])}</code> of "
            f"<strong>{html.escape(collection_name(longest['collection_ref']))}</strong>, "
            f"{html.escape(longest['status'] or 'NULL')} and unchanged for "
            f"{format_duration(longest['unchanged_for_seconds'])}."
        )
    failing = [row for row in collections if row["failure_rate"] is not None and row["failed_runs"]]
    if failing:
        worst = max(failing, key=lambda row: (row["failure_rate"], row["failed_runs"]))
        notes.append(
            f"Most failing collection: <strong>{html.escape(collection_name(worst['collection_ref']))}</strong>, "
            f"{format_rate(worst['failure_rate'])} ({worst['failed_runs']:,} of {worst['terminal_runs']:,} terminal "
            "runs)."
        )
    timed = [row for row in collections if row["p95_duration_seconds"] is not None]
    if timed:
        slowest = max(timed, key=lambda row: row["p95_duration_seconds"])
        notes.append(
            f"Slowest collection: <strong>{html.escape(collection_name(slowest['collection_ref']))}</strong>, "
            f"p95 {format_duration(slowest['p95_duration_seconds'])} "
            f"(p50 {format_duration(slowest['p50_duration_seconds'])})."
        )
    if headline["open_runs"]:
        notes.append(f"{headline['open_runs']:,} runs are still open (not completed, failed or partially completed).")
    if headline["terminal_runs"]:
        notes.append(
            f"{headline['exact_duration_runs']:,} of {headline['terminal_runs']:,} durations are exact "
            f"({format_rate(headline['exact_duration_share'])}); "
            f"{headline['observed_duration_runs']:,} finished without the API moving modified and are known only "
            "as a range."
        )
    return notes


def _card(label: str, value: str, detail: str = "", wide: bool = False) -> str:
    detail_html = f'<div class="detail">{detail}</div>' if detail else ""
    kind = "card wide" if wide else "card"
    return f'<div class="{kind}"><div class="label">{label}</div><div class="value">{value}</div>{detail_html}</div>'


def render_page(headline: dict, latest_load: dict | None, notes: list[str], sections: list[Section]) -> str:
    """The whole document: the headline cards and the highlights above the sections."""
    generated = datetime.now(timezone.utc).strftime(UTC_FORMAT)
    if latest_load is not None:
        scan = " (full scan)" if latest_load["full_scan"] else ""
        finished = latest_load["finished_at"] or "unfinished"
        load_detail = f"latest load {finished}: {latest_load['outcome'] or '–'}{scan}"
    else:
        load_detail = "no load recorded"
    cards = "".join([
        _card("Runs", format_count(headline["total_runs"]), f"{format_count(headline['open_runs'])} open"),
        _card("Spaces", format_count(headline["spaces"])),
        _card("Collections", format_count(headline["collections"])),
        _card(
            "Failure rate",
            format_rate(headline["failure_rate"]),
            f"{format_count(headline['failed_runs'])} failed of {format_count(headline['terminal_runs'])} terminal",
        ),
        _card("p50 duration", format_duration(headline["p50_duration_seconds"]), "terminal runs"),
        _card("p95 duration", format_duration(headline["p95_duration_seconds"]), "terminal runs"),
        _card(
            "Exact durations",
            format_rate(headline["exact_duration_share"]),
            f"{format_count(headline['exact_duration_runs'])} of {format_count(headline['terminal_runs'])} terminal; "
            f"p95 {format_duration(headline['p95_exact_duration_seconds'])}",
        ),
        _card("Data as of", html.escape(headline["last_modified"] or "–"), html.escape(load_detail), wide=True),
    ])
    period = (
        f"runs created {headline['first_day']} to {headline['last_day']} (UTC)" if headline["first_day"] else "no runs"
    )
    listed_notes = "".join(f"<li>{note}</li>" for note in notes)
    body = "".join(
        f'<section><h2>{html.escape(section.title)}</h2><p class="caption">{html.escape(section.caption)}</p>'
        f'<div class="figure">{section.body}</div></section>'
        for section in sections
    )
    return _TEMPLATE.format(
        css=_CSS,
        period=html.escape(period),
        generated=html.escape(generated),
        cards=cards,
        notes=listed_notes,
        body=body,
    )


_CSS = """
:root { --text: #2b2f36; --muted: #6b7280; --line: #e6e8eb; --bg: #f6f7f9; --failed: #c8453b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
       font: 14px/1.45 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0; font-size: 24px; }
header p { margin: 4px 0 0; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 20px 0 8px; }
.card { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; margin-top: 2px; white-space: nowrap; }
.card.wide { grid-column: span 2; }
.card.wide .value { font-size: 20px; padding-top: 3px; }
.card .detail { color: var(--muted); font-size: 12px; margin-top: 2px; }
.highlights { background: white; border: 1px solid var(--line); border-left: 4px solid var(--failed);
              border-radius: 10px; padding: 10px 16px 10px 32px; margin: 12px 0 0; }
.highlights li { margin: 3px 0; }
section { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px;
          margin-top: 18px; }
section h2 { margin: 0; font-size: 17px; }
section h3 { margin: 14px 0 4px; font-size: 14px; }
.caption { margin: 2px 0 10px; color: var(--muted); font-size: 13px; }
.figure svg { display: block; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 5px 8px; overflow-wrap: anywhere; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; white-space: nowrap; }
.rate { display: inline-block; min-width: 64px; padding: 1px 6px; border-radius: 4px;
        background: linear-gradient(90deg, rgba(200, 69, 59, .28) var(--rate), transparent var(--rate)); }
.tag { display: inline-block; font-size: 11px; color: var(--muted); border: 1px solid var(--line);
       border-radius: 4px; padding: 0 5px; margin-left: 4px; }
.tag.warn { color: #8a5a00; border-color: #e3a33b; background: #fff6e0; }
.tag.bad { color: #9b2c24; border-color: #c8453b; background: #fdecea; font-weight: 600; }
.worse { color: var(--failed); font-weight: 700; }
.muted { color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"""


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unpod runs report</title>
<style>{css}</style>
</head>
<body>
<main>
<header>
<h1>Unpod runs</h1>
<p>{period} · generated {generated}</p>
</header>
<div class="cards">{cards}</div>
<ul class="highlights">{notes}</ul>
{body}
<footer>Terminal statuses: completed, failed, partially_completed (partially completed is not a failure).
Failure rate = failed / terminal runs. Durations are modified − created of terminal runs; exact ones are those whose
finish moved modified (finish_source = modified); p50/p95 are continuous quantiles. Ages and times in status are in
the API's clock at the latest load. Days are UTC dates of <code>created</code>. Runs the API no longer lists are left out.
Built from the <code>analytics</code> models of the DuckDB file.</footer>
</main>
</body>
</html>
"""
