"""Option callbacks the `eqs` commands share."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click


def date_value(_ctx, _param, value: str | None) -> date | None:
    """A YYYY-MM-DD option or argument as a date (None stays None)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date (expected YYYY-MM-DD)") from exc


# The options of the commands that print a scorecard (`eqs venues`, `eqs algos`).
warehouse_file = click.option(
    "--warehouse",
    "warehouse_path",
    required=True,
    type=click.Path(path_type=Path),
    help="DuckDB warehouse file.",
)
scorecard_window = click.option(
    "--window",
    type=click.IntRange(1),
    default=None,
    help="Trailing trade dates; recomputes the scorecard (default: the stored scorecard, or 20).",
)
