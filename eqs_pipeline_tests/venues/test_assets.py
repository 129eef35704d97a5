"""Tier 3: the venue assets end to end on the session's built warehouse of the small desk and on
its rematerialized copy (nothing doubles), the scorecard reproduction view, the event export and
`eqs venues`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from eqs_pipeline.cli.venues import venues_command

pytestmark = pytest.mark.integration

TABLES = (
    "venue.venue_daily",
    "venue.venue_daily_buckets",
    "venue.venue_scorecard",
    "venue.routing_recommendations",
    "venue.venue_performance_events",
)


@pytest.fixture(scope="module")
def built(built_warehouse) -> tuple[Path, dict[str, int]]:
    """The built warehouse (read-only) and its venue tables' row counts."""
    _, wh, report = built_warehouse
    assert report.check_failures == []
    with duckdb.connect(str(wh), read_only=True) as con:
        first = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}
    return wh, first


def test_tables_filled_and_rerun_replaces(built, rerun_warehouse) -> None:
    wh, first = built
    with duckdb.connect(str(rerun_warehouse.warehouse), read_only=True) as con:
        second = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}
    with duckdb.connect(str(wh), read_only=True) as con:
        venues = con.execute("select count(distinct venue) from venue.venue_daily").fetchone()[0]
        days = con.execute("select count(distinct trade_date) from venue.venue_daily").fetchone()[0]
    assert all(n > 0 for n in first.values()), first
    assert second == first
    assert rerun_warehouse.after_all == rerun_warehouse.after_one == []  # and every figure
    assert days == 2 and first["venue.venue_daily"] == venues * 2
    assert first["venue.venue_scorecard"] == venues == first["venue.venue_performance_events"]


def test_view_reproduces_the_scorecard_from_fills(built) -> None:
    wh, _ = built
    with duckdb.connect(str(wh), read_only=True) as con:
        diff = con.execute(
            """
            select max(abs(s.all_in_cost_bps_unadjusted - v.all_in_cost_bps_unadjusted)),
                   max(abs(s.markout_60s_bps_unadjusted - v.markout_60s_bps_unadjusted)),
                   max(abs(s.fill_rate_unadjusted - v.fill_rate_unadjusted)),
                   max(abs(s.fills - v.fills)), count(*)
            from venue.venue_scorecard s join venue.scorecard_from_fills v using (venue)
            """
        ).fetchone()
        venues = con.execute("select count(*) from venue.venue_scorecard").fetchone()[0]
    assert diff[4] == venues
    assert max(diff[:4]) < 1e-9


def test_events_exported_as_json_lines(built) -> None:
    wh, first = built
    files = list((wh.parent / "exports" / "venue_performance_events").glob("*/events.jsonl"))
    assert len(files) == 1
    lines = files[0].read_text().splitlines()
    assert len(lines) == first["venue.venue_performance_events"]
    event = json.loads(lines[0])
    assert event["event_type"] == "VenuePerformanceEvent"
    assert {"score", "rank", "all_in_cost_bps_ci_low"} <= set(event["payload"])


def test_eqs_venues_prints_the_scorecard(built) -> None:
    wh, _ = built
    result = CliRunner().invoke(venues_command, ["--warehouse", str(wh)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Venue scorecard" in result.output and "ELPX" in result.output
    words = " ".join(result.output.split())  # the title wraps at the table's width
    assert "95% intervals" in words  # the default ci_level, read from the table
    again = CliRunner().invoke(venues_command, ["--warehouse", str(wh), "--window", "1"])
    assert again.exit_code == 0, again.output
    assert "1 trade dates" in again.output
    missing = CliRunner().invoke(venues_command, ["--warehouse", str(wh.parent / "nope.duckdb")])
    assert missing.exit_code == 2


def test_eqs_venues_states_the_level_the_scorecard_was_computed_at(built) -> None:
    """A scorecard stored at another ci_level is not labelled 95%."""
    from rich.console import Console

    from eqs_pipeline.cli.venues import render
    from eqs_pipeline.storage import warehouse

    wh, _ = built
    with warehouse.connect(wh, read_only=True) as con:
        card = warehouse.read_table(con, "venue.venue_scorecard")
    label = card["ci_method"][0].replace("95%", "80%")
    console = Console(record=True, width=200)
    render(card.with_columns(ci_method=pl.lit(label)), console)
    text = " ".join(console.export_text().split())  # the title and caption wrap
    assert "80% intervals" in text and "80% interval's half-width" in text and "95%" not in text


def test_eqs_venues_cuts_no_figure_in_an_80_column_terminal(built) -> None:
    """Three-digit figures are printed whole at 80 columns, never cut to "-123.…"."""
    from rich.console import Console

    from eqs_pipeline.cli.venues import render
    from eqs_pipeline.storage import warehouse

    wh, _ = built
    with warehouse.connect(wh, read_only=True) as con:
        card = warehouse.read_table(con, "venue.venue_scorecard")
    wide = card.with_columns(
        pl.col("markout_60s_bps") - 123.0,
        pl.col("markout_60s_bps_ci_low") - 123.0,
        pl.col("markout_60s_bps_ci_high") - 123.0,
    )
    console = Console(record=True, width=80)
    render(wide, console)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    value = wide.sort("markout_60s_bps")["markout_60s_bps"][0]
    assert f"{value:.2f}" in text


def test_venue_events_before_any_scorecard_say_what_to_run(tmp_path: Path) -> None:
    """Materialized alone on a warehouse without a scorecard: a Failure naming the asset to
    materialize first, not DuckDB's "Table ... does not exist! Did you mean ...?"."""
    import dagster as dg

    from eqs_pipeline.defs.resources import EqsPathsResource
    from eqs_pipeline.defs.venues.assets import venue_performance_events
    from eqs_pipeline.storage import warehouse

    warehouse.connect(tmp_path / "warehouse.duckdb").close()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [venue_performance_events],
            resources={"paths": EqsPathsResource(home=str(tmp_path))},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "materialize venue/venue_scorecard (job eqs_window) first" in message


def test_eqs_venues_prints_venue_names_as_text_not_markup(built) -> None:
    """A venue named like rich markup ("[/bold]" closed a tag nobody opened: MarkupError) and a
    note quoting one are printed as they are."""
    from rich.console import Console

    from eqs_pipeline.cli.venues import render
    from eqs_pipeline.storage import warehouse

    wh, _ = built
    with warehouse.connect(wh, read_only=True) as con:
        card = warehouse.read_table(con, "venue.venue_scorecard")
    first = card["venue"][0]
    hostile = card.with_columns(
        venue=pl.when(pl.col("venue") == first).then(pl.lit("[/bold]")).otherwise("venue"),
        note=pl.when(pl.col("venue") == first).then(pl.lit("[red]not ranked[/red]")),
    )
    console = Console(record=True, width=200)
    render(hostile, console)
    text = console.export_text()
    assert "[/bold]" in text
    assert "[/bold]: [red]not ranked[/red]" in text
