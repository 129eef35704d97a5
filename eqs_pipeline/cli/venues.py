"""`eqs venues`: print the venue scorecard of a warehouse as a table in the terminal."""

from __future__ import annotations

from pathlib import Path

import click
import polars as pl
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eqs_pipeline.cli.options import scorecard_window, warehouse_file
from eqs_pipeline.cli.render import fail, interval, interval_level
from eqs_pipeline.defs.venues.window import NoVenueData, load_window
from eqs_pipeline.storage import warehouse
from eqs_pipeline.venues.scorecard import venue_scorecard
from eqs_pipeline.venues.settings import VenueSettings

COLUMNS = (
    ("all_in_cost_bps", "all-\nin"),
    ("markout_60s_bps", "mark-\nout60"),
    ("price_improvement_bps", "PI"),
    ("effective_spread_bps", "eff\nsprd"),
    ("fill_rate", "fill rate"),
)


def render(scorecard: pl.DataFrame, console: Console) -> None:
    first = scorecard.row(0, named=True)
    level = interval_level(first["ci_method"])
    table = Table(
        box=box.SIMPLE_HEAD,
        collapse_padding=True,  # one space between columns: an 80-column terminal fits them
        pad_edge=False,
        title=f"Venue scorecard {first['window_start']} .. {first['window_end']} "
        f"({first['trade_days']} trade dates; across execution styles, mix-adjusted, {level} "
        "intervals)",
        caption="bps unless stated (all-in cost, 60 s markout, price improvement, effective "
        f"spread); ± is the {level} interval's half-width; a value alone has no interval (fills "
        "from one cluster). rank: venues not significantly different from their tier's leader "
        "share a rank",
    )
    # A terminal too narrow folds a figure onto two lines rather than cutting it ("-12.…").
    figure = {"justify": "right", "overflow": "fold"}
    table.add_column("rank", **figure)
    table.add_column("venue", overflow="fold")
    table.add_column("score", **figure)
    for _, title in COLUMNS:
        table.add_column(title, **figure)
    table.add_column("fills", **figure)
    table.add_column("flow", **figure)
    for row in scorecard.iter_rows(named=True):
        table.add_row(
            "-" if row["rank"] is None else str(row["rank"]),
            escape(row["venue"]),  # the desk's text, not markup
            interval(row, "score"),
            *[interval(row, m) for m, _ in COLUMNS],
            f"{row['fills']:,}",
            "-" if row["flow_share"] is None else f"{row['flow_share']:.1%}",
        )
    console.print(table)
    # Why a figure is missing, under the table (a column would not fit 80 characters). Data,
    # not markup: printed as it is.
    for row in scorecard.iter_rows(named=True):
        if row.get("note"):
            console.print(f"{row['venue']}: {row['note']}", markup=False, highlight=False)


@click.command("venues")
@warehouse_file
@scorecard_window
def venues_command(warehouse_path: Path, window: int | None) -> None:
    """Print the venue scorecard (rank tiers, score and key metrics with intervals)."""
    console = Console()
    try:
        con = warehouse.connect(warehouse_path, read_only=True)
    except (FileNotFoundError, warehouse.WarehouseError) as exc:
        fail(str(exc))
    settings = VenueSettings(window_days=window or VenueSettings().window_days)
    data = None
    try:
        with warehouse.naming_damage(warehouse_path):
            if window is None and warehouse.table_exists(con, "venue.venue_scorecard"):
                frame = warehouse.read_table(con, "venue.venue_scorecard")
            else:
                data = load_window(con, settings, with_tape=False)
    except (NoVenueData, warehouse.WarehouseError) as exc:
        fail(str(exc))
    finally:
        con.close()  # before the statistics: DuckDB's cached blocks go with the connection
    if data is not None:
        frame = venue_scorecard(data.fills, data.children, data.bounds, settings)
    if frame.height == 0:
        fail("the scorecard is empty")
    render(frame.sort(pl.col("rank").is_null(), "rank", pl.col("score").neg()), console)
