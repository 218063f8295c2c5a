"""`rlm-code usage`: what the calls recorded in the usage ledger used and cost.

Reads the ledger file (`rlm_code.models.ledger`) wherever the settings put it, even when
recording is switched off (an old ledger stays readable). A ledger that does not exist yet is
an empty table, not an error, and is not created by reading. Cost is honest: a call with no
known price is counted apart ("unknown cost") and never as $0, and the totals say when the
cost is partial.

`register` imports nothing but argparse (start-up is benchmarked); the ledger, the config and
the output helpers load inside `run`.
"""

from __future__ import annotations

import argparse

from rlm_code.cli.exit_codes import EXIT_OK

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~1.5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

GROUPS = ("model", "day", "scope", "provider")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
HEADERS = (
    "calls",
    "failed",
    "input",
    "output",
    "cache read",
    "cache write",
    "reasoning",
    "cost (USD)",
    "unknown cost",
)
_COUNTS = (
    "calls",
    "failed_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def parse_since(text: str) -> float:
    """`7d`, `12h`, `30m`, `90s`, `2w` (that long ago) or a date `2025-01-31` (its local
    midnight) as Unix time; argparse turns the error into a one-line usage error (exit 2)."""
    import math
    import time

    value = text.strip()
    unit = _UNITS.get(value[-1:].lower())
    if unit is not None:
        try:
            amount = float(value[:-1])
        except ValueError:
            amount = math.nan
        if math.isfinite(amount) and amount > 0:
            return time.time() - amount * unit
    else:
        from datetime import datetime

        try:
            return datetime.strptime(value, "%Y-%m-%d").timestamp()
        except (ValueError, OverflowError, OSError):
            pass
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a duration like 7d, 12h, 30m or 2w, nor a date like 2025-01-31"
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "usage",
        help="show the calls, tokens and cost recorded in the usage ledger",
        description=(
            "Show what the calls recorded in the usage ledger used and cost: calls, token "
            "buckets, cost, and how many calls have no known price (never counted as $0). "
            "The ledger is on by default; RLM_CODE_LEDGER=off turns it off and "
            "RLM_CODE_LEDGER=PATH moves it."
        ),
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only calls since then: 7d, 12h, 30m, 2w, or a date (2025-01-31)",
    )
    parser.add_argument(
        "--by", choices=GROUPS, default="model", help="one row per model (default), day, ..."
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print {totals, rows} as JSON")
    output.add_argument("--csv", action="store_true", help="print the rows as CSV")
    parser.set_defaults(handler="rlm_code.cli.commands.usage:run")


def format_cost(figures: dict[str, Any]) -> str:
    """`$0.0123`; `-` when there is nothing to price; `unknown` when no call had a price."""
    cost = figures["cost_usd"]
    if cost is None:
        return "unknown" if figures["unknown_cost_calls"] else "-"
    return f"${cost:.4f}" if cost >= 1 or cost == 0 else f"${cost:.6f}"


def _cells(label: str, figures: dict[str, Any]) -> list[str]:
    counts = [f"{figures[name]:,}" for name in _COUNTS]
    unknown = figures["unknown_cost_calls"]
    return [label, *counts, format_cost(figures), f"{unknown:,}" if unknown else "-"]


def _label(by: str, value: Any) -> str:
    if value is None or value == "":
        return "(no scope)" if by == "scope" else "(none)"
    return str(value)


def _print_table(summary: dict[str, Any]) -> None:
    from rlm_code.cli._output import print_table, write

    by = summary["by"]
    rows = [_cells(_label(by, row[by]), row) for row in summary["rows"]]
    rows.append(_cells("total", summary["totals"]))
    print_table((by, *HEADERS), rows)
    totals = summary["totals"]
    if totals["cost_partial"]:
        write(
            f"cost is partial: {totals['unknown_cost_calls']:,} call(s) have no known price "
            "and are not counted in it"
        )


def _print_csv(summary: dict[str, Any]) -> None:
    import csv
    import sys

    from rlm_code.cli.sanitize import strip_controls_one_line

    by = summary["by"]
    fields = [by, *_COUNTS, "cost_usd", "cost_partial", "unknown_cost_calls"]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(fields)
    for row in summary["rows"]:
        key = row[by]
        cells = [strip_controls_one_line(str(key)) if key is not None else ""]
        cells += [row[name] for name in fields[1:]]
        writer.writerow(["" if cell is None else cell for cell in cells])
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    import sys

    from rlm_code.cli._output import fail, print_json
    from rlm_code.cli.exit_codes import exit_code_for
    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import RLMCodeError
    from rlm_code.models.ledger import Ledger

    try:
        settings = ConfigManager().ledger
        with Ledger(settings.path) as ledger:
            summary = ledger.summary(since=args.since, by=args.by)
    except RLMCodeError as exc:  # a bad config exits 2, an unreadable ledger 1
        if args.debug:
            raise
        return fail(str(exc), exit_code_for(exc))
    if not settings.enabled:
        print(
            "rlm-code: note: the usage ledger is off (RLM_CODE_LEDGER or the config's "
            "ledger.enabled); showing what was recorded before",
            file=sys.stderr,
        )
    if args.json:
        print_json(summary)
    elif args.csv:
        _print_csv(summary)
    else:
        _print_table(summary)
    return EXIT_OK
