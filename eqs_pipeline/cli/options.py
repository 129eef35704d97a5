"""Option callbacks the `eqs` commands share."""

from __future__ import annotations

from datetime import date

import click


def date_value(_ctx, _param, value: str | None) -> date | None:
    """A YYYY-MM-DD option or argument as a date (None stays None)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date (expected YYYY-MM-DD)") from exc
