"""Sums over the ledger, for `rlm-code usage` and `Ledger.summary`.

The figures mean what the connector's in-memory summary means (`rlm_code.models.tally`):
`calls` are calls that produced (part of) a reply and `failed_calls` those that failed before
one; a token bucket sums what was reported (a call that lacked a count is an
`unknown_usage_calls` call); `cost_usd` sums the known costs and is None when no call had
one, and `cost_partial` is true when some call's cost is unknown (`unknown_cost_calls`) —
an unpriced call is never counted as $0. A failure that reported no tokens has no cost to
know, so it does not make the cost partial.

SQLite does the sums in one query per summary (the `at` index serves `since`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

# `by` -> the SQL expression of the group key (no user text ever reaches the SQL).
GROUPS = {
    "model": "provider || '/' || model",
    "provider": "provider",
    "scope": "scope",
    "day": "date(at, 'unixepoch', 'localtime')",
}
BUCKETS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
)

_SUMS = ", ".join(
    [
        "SUM(error_type IS NULL)",
        "SUM(error_type IS NOT NULL)",
        *(f"IFNULL(SUM({bucket}), 0)" for bucket in BUCKETS),
        "IFNULL(SUM(CASE WHEN input_tokens IS NULL THEN 0 ELSE input_tokens"
        " + IFNULL(cache_read_tokens, 0) + IFNULL(cache_write_tokens, 0) END), 0)",
        "SUM(error_type IS NULL AND (input_tokens IS NULL OR output_tokens IS NULL))",
        "SUM(cost_usd)",
        "COUNT(cost_usd)",
        "SUM(cost_usd IS NULL AND (error_type IS NULL"
        " OR input_tokens IS NOT NULL OR output_tokens IS NOT NULL))",
    ]
)


def empty_totals() -> dict[str, Any]:
    """The totals of no calls at all."""
    return _figures((0, 0, *(0 for _ in BUCKETS), 0, 0, None, 0, 0))


def _figures(row: tuple[Any, ...]) -> dict[str, Any]:
    calls, failed, *rest = row
    buckets = dict(zip(BUCKETS, (int(v or 0) for v in rest[: len(BUCKETS)]), strict=True))
    prompt, unknown_usage, cost, priced, unknown_cost = rest[len(BUCKETS) :]
    figures: dict[str, Any] = {"calls": int(calls or 0), "failed_calls": int(failed or 0)}
    figures.update(buckets)
    figures["prompt_tokens"] = int(prompt or 0)
    figures["completion_tokens"] = buckets["output_tokens"]
    figures["total_tokens"] = figures["prompt_tokens"] + buckets["output_tokens"]
    figures["unknown_usage_calls"] = int(unknown_usage or 0)
    figures["cost_usd"] = round(float(cost), 10) if priced else None
    figures["cost_partial"] = bool(unknown_cost)
    figures["unknown_cost_calls"] = int(unknown_cost or 0)
    return figures


def _sort_key(by: str) -> Any:
    if by == "day":
        return lambda row: row[by]
    # the biggest spenders first; unknown cost after known; then the most calls
    return lambda row: (
        row["cost_usd"] is None,
        -(row["cost_usd"] or 0.0),
        -row["calls"],
        row[by] or "",
    )


def summarize(
    connection: sqlite3.Connection | None, since: float | None, by: str | None
) -> dict[str, Any]:
    """`{"since", "by", "totals", "rows"}` over the calls at or after `since` (Unix time;
    None: all), with one row per group when `by` names one (model, day, scope, provider)."""
    if by is not None and by not in GROUPS:
        raise ValueError(f"cannot group by {by!r}; use one of: {', '.join(GROUPS)}")
    where, params = ("WHERE at >= ?", (float(since),)) if since is not None else ("", ())
    result: dict[str, Any] = {"since": since, "by": by, "totals": empty_totals(), "rows": []}
    if connection is None:
        return result
    total = connection.execute(f"SELECT {_SUMS} FROM calls {where}", params).fetchone()
    result["totals"] = _figures(tuple(total))
    if by is not None:
        query = f"SELECT {GROUPS[by]} AS grp, {_SUMS} FROM calls {where} GROUP BY grp"
        rows = [
            {by: grp, **_figures(tuple(rest))}
            for grp, *rest in connection.execute(query, params).fetchall()
        ]
        rows.sort(key=_sort_key(by))
        result["rows"] = rows
    return result
