"""Headline figures of a warehouse, for the end of `eqs run` / `eqs demo`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eqs_pipeline.storage import warehouse


class NothingLoaded(LookupError):
    """The warehouse exists but no trade date has been loaded into it yet."""


def headline_figures(path: Path) -> dict[str, object]:
    """The figures of `sql/select_headline_figures.sql` plus the distribution of the graded
    orders' grades (`ungraded_orders` counts the others), where the algo tables exist
    `sql/select_algo_headline.sql`, and where the monitoring's exist its active alerts
    (`alerts`, `sql/select_active_alerts.sql`)."""
    con = warehouse.connect(path, read_only=True)
    try:
        if not warehouse.table_exists(con, "quality.order_quality"):
            raise NothingLoaded(
                f"no trade date has been loaded into {path} yet: run `eqs run` on a landing "
                "directory with dated folders (its last failure, if any, names the cause)"
            )
        cursor = con.execute(warehouse.sql("select_headline_figures"))
        names = [d[0] for d in cursor.description]
        figures = dict(zip(names, cursor.fetchall()[0], strict=True))
        figures["grades"] = dict(con.execute(warehouse.sql("select_grade_distribution")).fetchall())
        figures |= {"tier_1_algos": None, "algo_saving_bps": None, "algo_saving_per_month": None}
        if warehouse.table_exists(con, "algo.algo_recommendations") and warehouse.table_exists(
            con, "algo.algo_scorecard"
        ):
            cursor = con.execute(warehouse.sql("select_algo_headline"))
            names = [d[0] for d in cursor.description]
            figures |= dict(zip(names, cursor.fetchall()[0], strict=True))
        figures["alerts"] = None
        if warehouse.table_exists(con, "monitor.alerts"):
            figures["alerts"] = con.execute(warehouse.sql("select_active_alerts")).pl()
        figures["latest_model"] = None
        if warehouse.table_exists(con, "model.model_versions"):
            latest = con.execute(warehouse.sql("select_latest_model")).pl()
            figures["latest_model"] = latest.row(0, named=True) if latest.height else None
    finally:
        con.close()
    return figures


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


# The alerts a summary names; `eqs alerts` lists them all.
SUMMARY_ALERTS = 3


def _alerts_text(alerts) -> str:
    """How many alerts are active and the most severe of them by name, e.g. `2: critical venue
    EDGA markout_5s_bps since 2026-12-01, ...`."""
    if alerts is None:
        return "n/a (no monitoring yet)"
    if alerts.height == 0:
        return "none"
    named = [
        f"{r['severity']} {r['dimension']} {r['subject']} {r['metric']} since {r['trade_date']}"
        f"{' (acknowledged)' if r['status'] == 'acknowledged' else ''}"
        for r in alerts.head(SUMMARY_ALERTS).iter_rows(named=True)
    ]
    more = alerts.height - len(named)
    text = f"{alerts.height}: " + "; ".join(named) + (f"; {more} more (eqs alerts)" if more else "")
    return escape(text)


def print_summary(path: Path, console: Console | None = None) -> dict[str, object]:
    console = console or Console()
    f = headline_figures(path)
    table = Table(
        title=f"Execution quality warehouse: {escape(str(path))}",
        show_header=False,
        title_justify="left",
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("trade dates", f"{_fmt(f['trade_dates'])} ({f['first_date']} .. {f['last_date']})"),
        ("parent orders", _fmt(f["orders"])),
        ("fills", _fmt(f["fills"])),
        ("filled notional", _fmt(f["filled_notional"])),
        (
            "fill rate (shares)",
            _fmt(None if f["fill_rate"] is None else 100 * f["fill_rate"], " %"),
        ),
        (
            "implementation shortfall (notional-weighted)",
            _fmt(f["implementation_shortfall_bps"], " bps"),
        ),
        ("effective spread (share-weighted)", _fmt(f["effective_spread_bps"], " bps")),
        ("price improvement (share-weighted)", _fmt(f["price_improvement_bps"], " bps")),
        ("markout 60 s (share-weighted)", _fmt(f["markout_60s_bps"], " bps")),
        ("mean quality score", _fmt(f["mean_quality_score"])),
        ("grades", escape(", ".join(f"{g} {n:,}" for g, n in f["grades"].items()))),
        ("orders priced by the cost model", _fmt(f["model_priced_orders"])),
        # The scorecard's first tier: "not ranked" when no algo has min_orders orders.
        ("algos in the first tier", escape(f["tier_1_algos"] or "none ranked")),
        (
            "recommended algo mix: expected saving",
            # Null without a cost model in service: the selection prices nothing.
            "n/a (no cost model in service)"
            if f["algo_saving_bps"] is None
            else f"{_fmt(f['algo_saving_bps'], ' bps')}, {_fmt(f['algo_saving_per_month'])} a month",
        ),
        # Orders without the market data to price their cost (docs/METRICS.md, "Not graded").
        ("orders not graded", _fmt(f["ungraded_orders"])),
        ("fills without a prior quote", _fmt(f["fills_without_quote"])),
        ("quarantined rows", _fmt(f["quarantined_rows"])),
        ("active quality alerts", _alerts_text(f["alerts"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if f["latest_model"] is not None:
        from eqs_pipeline.cli.model import model_table

        console.print(model_table(f["latest_model"]))
    console.print(
        f"Query it: [bold].venv/bin/duckdb -readonly {escape(str(path))}[/bold]  "
        "(e.g. select * from quality.order_quality limit 10)"
    )
    return f
