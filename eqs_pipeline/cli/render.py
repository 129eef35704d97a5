"""What the `eqs` commands that print a scorecard share: figures with their intervals, the
intervals' level, and failing with a message."""

from __future__ import annotations

import re
import sys
from typing import NoReturn

from rich.console import Console
from rich.markup import escape


def interval(row: dict, metric: str) -> str:
    value, low, high = row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if value is None:
        return "-"
    if low is None or high is None:
        return f"{value:.2f}"
    if abs((high - value) - (value - low)) <= 1e-9 * max(1.0, abs(value)):
        return f"{value:.2f} ±{high - value:.2f}"  # symmetric (t) interval: compact form
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def interval_level(ci_method: str | None) -> str:
    """The intervals' level as the scorecard stored it: the end of its `ci_method` label
    (the venue scorecard's `_ci_method_label`, the algo scorecard's likewise, e.g. "... t(effective clusters) 90%")."""
    match = re.search(r"(\d+(?:\.\d+)?%)$", ci_method or "")
    return match.group(1) if match else "confidence"


def fail(message: str) -> NoReturn:
    # Messages quote paths and values from the data: printed as text, never as markup.
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    sys.exit(2)
