"""The `eqs` command line: simulate, run, demo, import-lobster, summary."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eqs_pipeline.cli.alerts import alerts_command
from eqs_pipeline.cli.algos import algos_command
from eqs_pipeline.cli.model import train_command
from eqs_pipeline.cli.monitor import monitor_command
from eqs_pipeline.cli.options import date_value
from eqs_pipeline.cli.venues import venues_command
from eqs_pipeline.ingest import LandingError

console = Console(stderr=True)

DEFAULT_DEMO_HOME = Path(".eqs_home")
# The demo's last trade dates are priced by the cost model it trains on the others.
DEMO_PRICED_DAYS = 3
# Trade dates to learn from: the held-out and calibration dates plus at least one to fit.
DEMO_MIN_LEARNED_DAYS = 5
# The demo's injected degradation (docs/MONITORING.md, "The demo"): over its last dates, the
# inverted venue (about 500 fills a day) fills a tick worse and turns toxic; the monitoring's
# baseline needs the 20 dates before them (min_baseline_days + baseline_gap_days).
DEMO_DEGRADED_VENUE = "EDGA"
DEMO_DEGRADED_DAYS = 3
DEMO_MARKER = ".eqs-demo"


def _fail(message: str) -> None:
    # Messages quote paths and values from the data: printed as text, never as markup.
    console.print(f"[bold red]error:[/bold red] {escape(message)}")
    sys.exit(2)


@click.group()
@click.version_option(package_name="eqs-pipeline")
def main() -> None:
    """Execution Quality Service: best-execution and transaction-cost analysis."""


@main.command()
@click.option("--days", default=3, show_default=True, type=click.IntRange(1), help="Trading days.")
@click.option("--symbols", default=8, show_default=True, type=click.IntRange(1))
@click.option("--orders-per-day", default=200, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--start-date", default="2026-11-02", show_default=True, callback=date_value)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["parquet", "csv", "jsonl"]),
    help="File formats to write (repeat to mix them); default parquet.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Landing directory.")
@click.option(
    "--routing",
    default="default",
    show_default=True,
    type=click.Choice(["default", "dark-lit"]),
    help="default: ten venues, every child style; dark-lit: midpoint pegs to one dark pool and "
    "marketable IOC orders to four lit venues (docs/SIMULATOR.md).",
)
@click.option(
    "--degrade",
    default=None,
    metavar="VENUE@YYYY-MM-DD[THH:MM]",
    help="Inject a degradation: from that trade date (and time on the market's clock; default "
    "the 09:30 open) on, the venue fills one tick worse and turns toxic (docs/SIMULATOR.md, "
    '"Injected degradation").',
)
@click.option(
    "--intraday",
    default=None,
    type=click.Path(path_type=Path),
    help="Also write the last trade date as one-minute micro-batches into this intraday drop "
    "folder, for `eqs monitor` (docs/MONITORING.md).",
)
def simulate(
    days, symbols, orders_per_day, seed, start_date, formats, out, routing, degrade, intraday
):
    """Simulate a market and a desk's executions into a landing directory (truth in _truth/)."""
    _simulate(
        days,
        symbols,
        orders_per_day,
        seed,
        start_date,
        formats or ("parquet",),
        out,
        routing,
        _degradation(degrade),
        intraday,
    )


# The session's open on the market's clock (`simulate.curves`: 09:30 to 16:00 New York).
_OPEN_MINUTE = 9 * 60 + 30


def _degradation(text: str | None):
    from eqs_pipeline.simulate import Degradation

    if text is None:
        return None
    venue, _, when = text.partition("@")
    day, _, clock = when.strip().partition("T")
    try:
        start_s = 0.0
        if clock:
            hours, minutes = (int(part) for part in clock.split(":"))
            start_s = 60.0 * (hours * 60 + minutes - _OPEN_MINUTE)
        return Degradation(venue.strip(), date.fromisoformat(day), start_s)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not VENUE@YYYY-MM-DD or VENUE@YYYY-MM-DDTHH:MM (09:30 or later)",
            param_hint="--degrade",
        ) from None


def _simulate(
    days,
    symbols,
    orders_per_day,
    seed,
    start_date,
    formats,
    out: Path,
    routing="default",
    degradation=None,
    intraday: Path | None = None,
) -> None:
    from eqs_pipeline.simulate import SimulationConfig, simulate_to_landing, trading_dates
    from eqs_pipeline.simulate.intraday import write_session

    try:
        cfg = SimulationConfig(
            days=days,
            symbols=symbols,
            orders_per_day=orders_per_day,
            seed=seed,
            start_date=start_date,
            routing=routing,
            degradation=degradation,
        )
    except ValueError as exc:
        _fail(str(exc))
    last = trading_dates(start_date, days)[-1]

    def session(day) -> None:
        if intraday is not None and day.trade_date == last:
            batches = write_session(intraday, day)
            console.print(
                f"intraday drop folder [bold]{escape(str(intraday))}[/bold]: {last}, "
                f"{batches} one-minute batches"
            )

    summary = simulate_to_landing(cfg, out, formats=tuple(formats), progress=True, on_day=session)
    counts = ", ".join(f"{t} {n:,}" for t, n in summary.items() if isinstance(n, int))
    console.print(f"simulated landing directory [bold]{escape(str(out))}[/bold]: {counts}")


@main.command()
@click.option(
    "--landing",
    required=True,
    envvar="EQS_LANDING",
    show_envvar=True,
    help="Landing directory: a folder or an object-store URL such as s3://bucket/eqs/landing "
    "(credentials from the environment).",
)
@click.option("--warehouse", required=True, type=click.Path(path_type=Path))
@click.option("--start", default=None, callback=date_value, help="First trade date (YYYY-MM-DD).")
@click.option("--end", default=None, callback=date_value, help="Last trade date (YYYY-MM-DD).")
@click.option(
    "--exports",
    default=None,
    help="Event exports (JSON Lines): a folder or an object-store URL.  [default: <warehouse "
    "folder>/exports]",
)
@click.option(
    "--lake",
    default=None,
    envvar="EQS_LAKE",
    show_envvar=True,
    help="Parquet lake of the daily partitions: a folder or an object-store URL such as "
    "s3://bucket/eqs/lake (credentials from the environment).  [default: <warehouse "
    "folder>/lake]",
)
@click.option(
    "--force",
    is_flag=True,
    help="Recompute every trade date and the window, even those whose landed files, settings "
    "and code are unchanged since they were last published (skipped by default).",
)
def run(landing: str, warehouse: Path, start, end, exports, lake, force: bool) -> None:
    """Materialize every asset for the trade dates present in a landing directory; dates whose
    inputs are unchanged since they were last published are skipped (see --force)."""
    _run(landing, warehouse, start, end, exports, lake, force=force)


def _run(
    landing: Path | str,
    warehouse: Path,
    start=None,
    end=None,
    exports=None,
    lake: str | None = None,
    *,
    force: bool = False,
    show_summary: bool = True,
) -> None:
    from eqs_pipeline.cli.summary import print_summary
    from eqs_pipeline.ingest import discover_trade_dates
    from eqs_pipeline.runtime.runner import RunFailed, run_pipeline, select_dates
    from eqs_pipeline.storage.warehouse import WarehouseError, naming_damage

    try:  # before the progress display: a wrong landing directory fails plainly
        select_dates(discover_trade_dates(landing), start, end)
    except LandingError as exc:
        _fail(str(exc))
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("materializing", total=None)

        def advance(step: str, done: int, total: int) -> None:
            progress.update(task, description=f"materializing {step}", completed=done, total=total)

        try:
            report = run_pipeline(
                landing,
                warehouse,
                start=start,
                end=end,
                exports=exports,
                lake=lake,
                on_progress=advance,
                force=force,
            )
        except (LandingError, RunFailed, WarehouseError) as exc:
            progress.stop()
            _fail(str(exc))
    console.print(
        f"materialized {len(report.materialized)} trade date(s) into "
        f"[bold]{escape(str(warehouse))}[/bold]"
    )
    if report.unchanged:
        console.print(
            f"[yellow]skipped[/yellow] {len(report.unchanged)} trade date(s) whose landed files, "
            "settings and code are unchanged since they were published "
            f"({_dates(report.unchanged)}); --force recomputes them"
        )
    for note in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(note)}")
    if report.check_failures:
        console.print(
            f"[yellow]{len(report.check_failures)} asset check(s) failed:[/yellow] "
            + escape(", ".join(report.check_failures))
        )
    if not show_summary:
        return
    try:
        with naming_damage(warehouse):
            print_summary(warehouse, Console())
    except WarehouseError as exc:
        _fail(str(exc))


def _dates(days: list[date]) -> str:
    """`days` in words: one, a few, or the first and last of many."""
    if len(days) <= 3:
        return ", ".join(map(str, days))
    return f"{days[0]} .. {days[-1]}"


@main.command()
@click.option(
    "--home",
    default=DEFAULT_DEMO_HOME,
    show_default=True,
    envvar="EQS_HOME",
    show_envvar=True,
    type=click.Path(path_type=Path),
    help="Folder for the demo landing directory, warehouse and exports.",
)
@click.option("--days", default=24, show_default=True, type=click.IntRange(1))
@click.option("--symbols", default=12, show_default=True, type=click.IntRange(1))
@click.option("--orders-per-day", default=400, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=7, show_default=True, type=int)
def demo(home: Path, days, symbols, orders_per_day, seed) -> None:
    """Simulate a demo data set (with venue EDGA degraded over its last 3 trade dates), run the
    whole pipeline on it, train the cost model on all but the last trade dates, price those
    with it, and print the summary (which names the alerts the degradation raised)."""
    landing = home / "landing"
    marker = landing / DEMO_MARKER
    if landing.exists() and not marker.exists():
        _fail(
            f"{landing} exists and was not written by `eqs demo`; refusing to overwrite it. "
            "Choose another --home (or EQS_HOME) for the demo."
        )
    if landing.exists():
        import shutil

        shutil.rmtree(landing)
    from eqs_pipeline.simulate.engine import trading_dates

    start = date(2026, 11, 2)
    dates = trading_dates(start, days)
    degraded = dates[-DEMO_DEGRADED_DAYS] if days > DEMO_DEGRADED_DAYS else None
    degradation = None
    if degraded is not None:
        from eqs_pipeline.simulate import Degradation

        degradation = Degradation(DEMO_DEGRADED_VENUE, degraded)
    _simulate(
        days, symbols, orders_per_day, seed, start, ("parquet",), landing, degradation=degradation
    )
    (landing / DEMO_MARKER).write_text("written by `eqs demo`; safe to delete\n")
    warehouse = home / "warehouse.duckdb"
    learned = dates[:-DEMO_PRICED_DAYS]
    if len(learned) < DEMO_MIN_LEARNED_DAYS:
        console.print(
            f"[yellow]no cost model:[/yellow] {days} trade dates leave too few to learn from "
            f"(the demo trains on all but the last {DEMO_PRICED_DAYS}; it needs "
            f"{DEMO_MIN_LEARNED_DAYS + DEMO_PRICED_DAYS} or more)"
        )
        _run(landing, warehouse, exports=home / "exports")
        return
    _run(landing, warehouse, end=learned[-1], exports=home / "exports", show_summary=False)
    _train_demo_model(warehouse)
    _run(landing, warehouse, exports=home / "exports")


def _train_demo_model(warehouse: Path) -> None:
    from eqs_pipeline.runtime.runner import RunFailed, train_model

    with console.status("training the cost model (eqs train)"):
        try:
            report = train_model(warehouse)
        except RunFailed as exc:
            _fail(str(exc))
    if report.model is None:
        console.print(f"[yellow]no cost model:[/yellow] {escape(report.message)}")


@main.command("import-lobster")
@click.argument("zips", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Landing directory.")
def import_lobster_command(zips: tuple[Path, ...], out: Path) -> None:
    """Convert LOBSTER sample zips into contract quotes, market_trades and instruments.

    instruments/lobster.parquet keeps the rows of symbols imported by earlier calls.
    """
    from eqs_pipeline.lobster import LobsterError, import_lobster

    try:
        counts = import_lobster(list(zips), out)
    except LobsterError as exc:
        _fail(str(exc))
    console.print(
        f"wrote [bold]{escape(str(out))}[/bold]: "
        + ", ".join(f"{t} {n:,}" for t, n in counts.items())
    )


@main.command("drop-date")
@click.argument("day", metavar="DATE", callback=date_value)
@click.option("--warehouse", required=True, type=click.Path(path_type=Path))
@click.option(
    "--lake",
    default=None,
    envvar="EQS_LAKE",
    show_envvar=True,
    help="Parquet lake: a folder or an object-store URL.  [default: <warehouse folder>/lake]",
)
@click.option(
    "--exports",
    default=None,
    help="Event exports: a folder or an object-store URL.  [default: <warehouse folder>/exports]",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def drop_date(day: date, warehouse: Path, lake: str | None, exports: str | None, yes: bool):
    """Remove one trade date from the daily warehouse tables, the lake and its event export (a
    date landed by mistake and since moved: re-running it cannot clear it, it has no landed
    files). The window tables keep it until the window job runs again."""
    from eqs_pipeline.runtime.runner import drop_trade_date
    from eqs_pipeline.storage.warehouse import WarehouseError, naming_damage

    if not warehouse.is_file():
        _fail(f"no warehouse at {warehouse}")
    if not yes:
        click.confirm(
            f"Remove every row of trade date {day} from {warehouse}, its lake partitions and its "
            "event export?",
            abort=True,
        )
    try:
        with naming_damage(warehouse):
            report = drop_trade_date(day, warehouse, lake=lake, exports=exports)
    except WarehouseError as exc:
        _fail(str(exc))
    if not (report.warehouse_rows or report.lake_files or report.exports):
        console.print(f"trade date {day}: nothing to remove")
        return
    rows = sum(report.warehouse_rows.values())
    console.print(
        f"trade date {day}: removed {rows:,} warehouse row(s) from "
        f"{len(report.warehouse_rows)} table(s), {len(report.lake_files)} lake partition(s), "
        f"{len(report.exports)} export file(s). The window tables keep it until the window job "
        "runs again (`eqs run` runs it)."
    )


@main.command()
@click.option("--warehouse", required=True, type=click.Path(path_type=Path))
def summary(warehouse: Path) -> None:
    """Print the headline figures of a warehouse."""
    from eqs_pipeline.cli.summary import NothingLoaded, print_summary
    from eqs_pipeline.storage.warehouse import WarehouseError, naming_damage

    try:
        with naming_damage(warehouse):
            print_summary(warehouse, Console())
    except (FileNotFoundError, NothingLoaded, WarehouseError) as exc:
        _fail(str(exc))


main.add_command(venues_command)
main.add_command(algos_command)
main.add_command(alerts_command)
main.add_command(train_command)
main.add_command(monitor_command)


if __name__ == "__main__":
    main()
