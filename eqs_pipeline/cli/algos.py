"""`eqs algos`: print the algo scorecard of a warehouse as a table in the terminal."""

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
from eqs_pipeline.storage import warehouse

COLUMNS = (
    ("implementation_shortfall_bps", "IS"),
    ("cost_vs_expected_bps", "vs\nexp"),
    ("interval_vwap_slippage_bps", "VWAP\nslip"),
    ("fill_rate", "fill rate"),
)
SCORECARD = "algo.algo_scorecard"


def _raw(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(scorecard: pl.DataFrame, console: Console) -> None:
    first = scorecard.row(0, named=True)
    level = interval_level(first["ci_method"])
    table = Table(
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        title=f"Algo scorecard {first['window_start']} .. {first['window_end']} "
        f"({first['trade_days']} trade dates; adjusted for {first['adjusted_for']}, at the "
        f"desk's mix, {level} intervals)",
        caption="bps unless stated; IS: implementation shortfall (raw: unadjusted); vs exp: "
        f"against the cost model; ± is the {level} interval's half-width. rank: algos not "
        "significantly different from their tier's leader share a rank",
    )
    figure = {"justify": "right", "overflow": "fold"}
    table.add_column("rank", **figure)
    table.add_column("algo", overflow="fold")
    table.add_column("score", **figure)
    for _, title in COLUMNS[:1]:
        table.add_column(title, **figure)
    table.add_column("IS\nraw", **figure)
    for _, title in COLUMNS[1:]:
        table.add_column(title, **figure)
    table.add_column("orders", **figure)
    for row in scorecard.iter_rows(named=True):
        cells = [interval(row, m) for m, _ in COLUMNS]
        table.add_row(
            "-" if row["rank"] is None else str(row["rank"]),
            escape(row["algo"]),  # the desk's text, not markup
            interval(row, "score"),
            cells[0],
            _raw(row["implementation_shortfall_bps_unadjusted"]),
            *cells[1:],
            f"{row['orders']:,}",
        )
    console.print(table)
    _wheel(scorecard, console)
    for row in scorecard.iter_rows(named=True):
        if row.get("note"):
            console.print(f"{row['algo']}: {row['note']}", markup=False, highlight=False)


def _wheel(scorecard: pl.DataFrame, console: Console) -> None:
    """The wheel's unbiased comparison, under the table, where the window has wheel orders."""
    wheel = scorecard.filter(pl.col("wheel_orders") > 0).sort(
        "wheel_implementation_shortfall_bps", nulls_last=True
    )
    if wheel.height == 0:
        return
    console.print(
        f"Algo wheel ({int(wheel['wheel_orders'].sum()):,} orders; "
        f"{wheel['wheel_test'].drop_nulls().first() or ''}):",
        markup=False,
        highlight=False,
    )
    for row in wheel.iter_rows(named=True):
        parts = [
            f"  {row['algo']}: {row['wheel_orders']:,} orders, IS "
            f"{interval(row, 'wheel_implementation_shortfall_bps')}"
        ]
        if row["wheel_difference_to_best_bps"] is not None:
            parts.append(f"vs best {interval(row, 'wheel_difference_to_best_bps')}")
        if row["wheel_orders_needed"] is not None and row["wheel_orders_needed"] > 0:
            parts.append(f"{row['wheel_orders_needed']:,} more wheel orders to separate it")
        console.print(", ".join(parts), markup=False, highlight=False)


def _recomputed(warehouse_path: Path, lake: str | None, window: int) -> pl.DataFrame:
    """The scorecard of the last `window` trade dates, from the warehouse's orders and the
    cost model the lake's registry has in service after them, as the window step computes
    it."""
    from eqs_pipeline.algos.settings import AlgoSettings
    from eqs_pipeline.defs.algos.assets import SCORECARD_KEY, compute
    from eqs_pipeline.defs.algos.window import read_inputs
    from eqs_pipeline.defs.resources import EqsPathsResource
    from eqs_pipeline.defs.venues.window import NoVenueData

    settings = AlgoSettings(window_days=window)
    paths = EqsPathsResource(
        home=str(warehouse_path.parent),
        warehouse=str(warehouse_path),
        lake=lake or str(warehouse_path.parent / "lake"),
    )

    def warn(message: str) -> None:
        Console(stderr=True).print(f"warning: {message}", markup=False, highlight=False)

    try:
        con = warehouse.connect(warehouse_path, read_only=True)
    except (FileNotFoundError, warehouse.WarehouseError) as exc:
        fail(str(exc))
    try:
        with warehouse.naming_damage(warehouse_path):
            inputs = read_inputs(paths, window, warn, con)
    except (NoVenueData, warehouse.WarehouseError) as exc:
        fail(str(exc))
    finally:
        con.close()
    return compute(inputs, settings, (SCORECARD_KEY,))[SCORECARD_KEY]


@click.command("algos")
@warehouse_file
@scorecard_window
@click.option(
    "--lake", default=None, help="The lake (default: <warehouse folder>/lake, as `eqs run`)."
)
def algos_command(warehouse_path: Path, window: int | None, lake: str | None) -> None:
    """Print the algo scorecard (rank tiers, adjusted and raw shortfall with intervals, the
    algo wheel's comparison)."""
    frame = None
    if window is None:
        try:
            con = warehouse.connect(warehouse_path, read_only=True)
        except (FileNotFoundError, warehouse.WarehouseError) as exc:
            fail(str(exc))
        try:
            with warehouse.naming_damage(warehouse_path):
                if warehouse.table_exists(con, SCORECARD):
                    frame = warehouse.read_table(con, SCORECARD)
        except warehouse.WarehouseError as exc:
            fail(str(exc))
        finally:
            con.close()
    if frame is None:
        from eqs_pipeline.algos.settings import AlgoSettings

        frame = _recomputed(warehouse_path, lake, window or AlgoSettings().window_days)
    if frame.height == 0:
        fail("the algo scorecard is empty: the window holds no orders")
    render(frame.sort(pl.col("rank").is_null(), "rank", pl.col("score").neg()), Console())
