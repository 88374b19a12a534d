"""The sections shown as tables: runs by status, trends, stuck runs, exact durations, queue time, recovery, the
collections to look at and the spaces."""

from __future__ import annotations

import html
from datetime import timezone

from unpod_runs.analytics.report.data import TABLE_ROWS
from unpod_runs.analytics.report.formatting import (
    UTC_FORMAT,
    collection_name,
    format_bracket,
    format_count,
    format_duration,
    format_rate,
)
from unpod_runs.analytics.report.page import Section, empty


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(
        f'<th class="{"num" if index >= numeric_from else ""}">{html.escape(header)}</th>'
        for index, header in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if index >= numeric_from else ""}">{cell}</td>' for index, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rate_cell(rate: float | None) -> str:
    if rate is None:
        return '<span class="muted">no terminal run</span>'
    return f'<span class="rate" style="--rate:{rate * 100:.1f}%">{format_rate(rate)}</span>'


def status_section(statuses: list[dict]) -> Section:
    caption = "where the runs stand now; open = any status other than completed, failed, partially_completed"
    if not statuses:
        return Section("Runs by status", caption, empty("No runs loaded yet."))
    rows = []
    for row in statuses:
        name = "NULL (no status)" if row["status"] is None else row["status"]
        tag = "terminal" if row["is_terminal"] else "open"
        unknown = "" if row["is_known_status"] else ' <span class="tag warn">unknown</span>'
        rows.append([
            f"{html.escape(name)} <span class=\"tag\">{tag}</span>{unknown}",
            format_count(row["runs"]),
            format_rate(row["share_of_runs"]),
            html.escape(row["first_created"].astimezone(timezone.utc).strftime(UTC_FORMAT)
                        if row["first_created"] else "–"),
        ])
    table = _table(["status", "runs", "share", "oldest created"], rows)
    return Section("Runs by status", caption, table)


def collections_section(collections: list[dict]) -> Section:
    failing = sorted(
        (row for row in collections if row["failure_rate"] is not None),
        key=lambda row: (-row["failure_rate"], -row["failed_runs"], collection_name(row["collection_ref"])),
    )[:TABLE_ROWS]
    slowest = sorted(
        (row for row in collections if row["p95_duration_seconds"] is not None),
        key=lambda row: (-row["p95_duration_seconds"], collection_name(row["collection_ref"])),
    )[:TABLE_ROWS]
    failing_table = _table(
        ["collection", "failure rate", "failed", "terminal", "open"],
        [
            [
                html.escape(collection_name(row["collection_ref"])),
                _rate_cell(row["failure_rate"]),
                format_count(row["failed_runs"]),
                format_count(row["terminal_runs"]),
                format_count(row["open_runs"]),
            ]
            for row in failing
        ],
    )
    slowest_table = _table(
        ["collection", "p50", "p95", "max", "terminal"],
        [
            [
                html.escape(collection_name(row["collection_ref"])),
                format_duration(row["p50_duration_seconds"]),
                f"<strong>{format_duration(row['p95_duration_seconds'])}</strong>",
                format_duration(row["max_duration_seconds"]),
                format_count(row["terminal_runs"]),
            ]
            for row in slowest
        ],
    )
    if not failing:
        failing_table = empty("No collection has a terminal run yet.")
    if not slowest:
        slowest_table = empty("No terminal run has a duration yet.")
    body = f"<h3>Most failing</h3>{failing_table}<h3>Slowest (by p95 duration)</h3>{slowest_table}"
    return Section("Collections to look at", "from analytics.collection_stats", body)


def spaces_section(spaces: list[dict]) -> Section:
    rows = [
        [
            html.escape(row["space_name"] or row["space_token"] or "(no space)")
            + (f' <span class="muted">{html.escape(row["space_token"])}</span>' if row["space_name"] else ""),
            format_count(row["total_runs"]),
            format_count(row["open_runs"]),
            _rate_cell(row["failure_rate"]),
            format_duration(row["p95_duration_seconds"]),
            html.escape(row["last_modified"] or "–"),
        ]
        for row in spaces
    ]
    table = _table(["space", "runs", "open", "failure rate", "p95 duration", "last modified"], rows)
    return Section("Spaces", f"the {len(rows)} spaces with the most runs, from analytics.space_stats", table)


def _change(before: str, after: str, worse: bool) -> str:
    arrow = '<span class="worse">→</span>' if worse else "→"
    return f"{before} {arrow} {'<strong>' + after + '</strong>' if worse else after}"


def trends_section(trends: list[dict]) -> Section:
    regressions = [row for row in trends if row["is_regression"]]
    caption = (
        "runs created in the last 7 days (to the API's clock at the latest load) against the 7 days before, from "
        "analytics.collection_trends. Regression: the failure rate rose by 5 points or more and a two-proportion "
        "z-test gives z ≥ 1.96 (20+ terminal runs in each week), or the p95 of the exact durations rose by half and "
        "by 60 s or more (50+ exact durations in each week)"
    )
    if not trends:
        return Section("Trends: last 7 days against the 7 before", caption,
                        empty("No run was created in the last 14 days."))
    shown = regressions + [row for row in trends if not row["is_regression"]][:max(0, TABLE_ROWS - len(regressions))]
    rows = []
    for row in shown:
        tags = []
        if row["is_failure_regression"]:
            tags.append('<span class="tag bad">failing more</span>')
        if row["is_duration_regression"]:
            tags.append('<span class="tag bad">slower</span>')
        rows.append([
            html.escape(collection_name(row["collection_ref"])) + "".join(tags),
            _change(format_rate(row["prior_7d_failure_rate"]), format_rate(row["last_7d_failure_rate"]),
                    row["is_failure_regression"]),
            f"{format_count(row['prior_7d_terminal_runs'])} → {format_count(row['last_7d_terminal_runs'])}",
            _change(format_duration(row["prior_7d_p95_exact_duration_seconds"]),
                    format_duration(row["last_7d_p95_exact_duration_seconds"]), row["is_duration_regression"]),
            f"{format_count(row['prior_7d_exact_duration_runs'])} → "
            f"{format_count(row['last_7d_exact_duration_runs'])}",
        ])
    headline = (f"<p><strong>{len(regressions)} of {len(trends)} collections got worse.</strong></p>" if regressions
                else f"<p>No regression among {len(trends)} collections with recent runs.</p>")
    table = _table(["collection", "failure rate", "terminal runs", "p95 (exact durations)", "exact durations"], rows)
    return Section("Trends: last 7 days against the 7 before", caption, headline + table)


def stuck_section(stuck: list[dict], headline: dict) -> Section:
    caption = (
        "the open runs unchanged longest, from analytics.open_runs: age and time unchanged in the API's clock at the "
        "last load that saw them (unchanged = same status and modified)"
    )
    if not stuck:
        return Section("Stuck runs", caption, empty("No run is open."))
    rows = [
        [
            f"<code>{html.escape(row['run_id'] or '–')}</code>",
            html.escape(collection_name(row["collection_ref"])),
            html.escape(row["space"] or "–"),
            html.escape(row["status"] or "NULL"),
            format_duration(row["age_seconds"]),
            f"<strong>{format_duration(row['unchanged_for_seconds'])}</strong>",
        ]
        for row in stuck
    ]
    summary = (
        f"<p>{format_count(headline['open_runs'])} runs are open; "
        f"<strong>{format_count(headline['unchanged_a_day_runs'])} have not changed for a day or more</strong>, "
        f"in {format_count(headline['unchanged_a_day_collections'])} collection(s).</p>"
    )
    table = _table(["run", "collection", "space", "status", "age", "unchanged for"], rows, numeric_from=4)
    return Section("Stuck runs", caption, summary + table)


def exact_section(headline: dict) -> Section:
    caption = (
        "how far durations can be trusted (finish_source in analytics.run_durations): exact when the API moved "
        "modified at the finish; observed when a load saw the run open and a later one saw it finished with the "
        "same modified (the API did not bump it: the duration lies between the two loads); unknown when a run was "
        "first seen finished with modified = created (an instant run, or a finish nobody saw)"
    )
    if not headline["terminal_runs"]:
        return Section("How many durations are exact", caption, empty("No terminal run yet."))
    rows = [
        ["exact (modified)", format_count(headline["exact_duration_runs"]),
         format_rate(headline["exact_duration_share"]),
         format_duration(headline["p50_exact_duration_seconds"]),
         format_duration(headline["p95_exact_duration_seconds"])],
        ["observed (no bump)", format_count(headline["observed_duration_runs"]),
         format_rate(headline["observed_duration_share"]),
         f"{format_duration(headline['observed_min_duration_seconds'])} to "
         f"{format_duration(headline['observed_max_duration_seconds'])}",
         f"known within {format_duration(headline['observed_avg_bracket_seconds'])} on average"],
        ["unknown (modified = created)", format_count(headline["unknown_duration_runs"]),
         format_rate(headline["unknown_duration_share"]),
         "0 s as reported", "instant, or a finish nobody saw"],
    ]
    table = _table(["finish", "runs", "share", "p50 / range", "p95 / precision"], rows)
    note = ("<p class=\"muted\">An observed duration is known only as a range: at least until the last load that "
            "saw the run open, at most until the first that saw it finished (the hourly schedule makes that an "
            "hour). The duration charts above use duration_seconds as SPEC defines it (modified − created) for every "
            "terminal run; collection_stats and daily_run_stats give p50/p95 of the exact ones beside it.</p>")
    return Section("How many durations are exact", caption, table + note)


def queue_section(queues: list[dict]) -> Section:
    caption = (
        "time queued (pending, scheduled) apart from time running (running, in_progress), from "
        "analytics.collection_time_in_status: medians over the runs that left the phase, as a range, since a "
        "load sees a status only when it runs (nightly: within a day; hourly: within an hour). Runs that started "
        "and finished between two loads are not here"
    )
    if not queues:
        return Section("Queue time and run time", caption, empty("No load has seen a run open yet."))
    rows = [
        [
            html.escape(collection_name(row["collection_ref"])),
            format_bracket(row["p50_queued_min_seconds"], row["p50_queued_max_seconds"]),
            format_count(row["queued_runs"]),
            format_bracket(row["p50_running_min_seconds"], row["p50_running_max_seconds"]),
            format_count(row["running_runs"]),
            format_count(row["queued_now_runs"]),
            format_duration(row["max_queued_now_seconds"]),
            format_count(row["held_now_runs"]),
        ]
        for row in queues
    ]
    table = _table(["collection", "median queued", "runs", "median running", "runs", "queued now",
                    "longest queued now", "held now"], rows)
    return Section("Queue time and run time", caption, table)


def recovery_section(collections: list[dict]) -> Section:
    caption = (
        "from analytics.collection_recovery and analytics.collection_freshness: time to recovery (runs finished in "
        "the last 30 days) runs from the first failure of a run of failures to the next completed run; time since the "
        "last completed run is at "
        "the API's clock of the latest load. Failing collections first, then the longest without a completion"
    )
    if not collections:
        return Section("Recovery and freshness", caption, empty("No collection has runs."))
    rows = []
    for row in collections:
        failing = (f'<span class="tag bad">failing since {html.escape(row["failing_since"])}, '
                   f'{row["failures_since_last_completed"]:,} failed</span>' if row["is_failing_now"] else "")
        rows.append([
            html.escape(collection_name(row["collection_ref"])) + failing,
            format_duration(row["seconds_since_last_completed"]) if row["seconds_since_last_completed"] is not None
            else '<span class="muted">never completed</span>',
            format_duration(row["mean_time_to_recovery_seconds"]),
            format_duration(row["max_time_to_recovery_seconds"]),
            format_count(row["recovered_incidents"]),
            format_count(row["open_runs"]),
        ])
    table = _table(["collection", "since last completed", "mean time to recovery", "longest", "recoveries", "open"],
                   rows)
    return Section("Recovery and freshness", caption, table)
