"""`eqs train`: train the expected-cost model on a warehouse's scored trade dates, and the
model table that `eqs train`, `eqs demo` and `eqs summary` print (docs/MODEL.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eqs_pipeline.cli.options import date_value
from eqs_pipeline.tables.model import SCORED

_NAMES = {"model": "cost model", "sqrt": "square-root law", "almgren": "Almgren 2005",
          "istar": "I-Star"}  # fmt: skip


def model_table(row: dict) -> Table:
    """The held-out figures of a registry row: the model and each fitted baseline."""
    status = "promoted" if row["promoted"] else "not promoted"
    table = Table(
        title=f"Cost model {row['model_version']} ({status}), learned {row['train_start']} .. "
        f"{row['train_end']}, scored out of sample on {row['holdout_start']} .. "
        f"{row['holdout_end']} ({row['holdout_orders']:,} orders)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name in ("predictor", "NLL", "RMSE bps", "MAE bps", "R2", "50% cover", "90% cover"):
        table.add_column(name, justify="left" if name == "predictor" else "right")
    for who in SCORED:
        table.add_row(
            _NAMES[who],
            *(
                "-" if row[f"{who}_{k}"] is None else fmt.format(row[f"{who}_{k}"])
                for k, fmt in (
                    ("nll", "{:.3f}"),
                    ("rmse_bps", "{:.2f}"),
                    ("mae_bps", "{:.2f}"),
                    ("r2", "{:.3f}"),
                    ("coverage_50", "{:.1%}"),
                    ("coverage_90", "{:.1%}"),
                )
            ),
        )
    table.caption = escape(row["promotion_reason"])
    return table


@click.command("train")
@click.option("--warehouse", required=True, type=click.Path(path_type=Path))
@click.option(
    "--lake", default=None, help="The lake (default: <warehouse folder>/lake, as `eqs run`)."
)
@click.option(
    "--as-of", default=None, callback=date_value, help="Train as of this date (YYYY-MM-DD)."
)
@click.option(
    "--window-days", default=None, type=click.IntRange(2), help="Trade dates learned from."
)
@click.option("--holdout-days", default=None, type=click.IntRange(1), help="Latest dates held out.")
@click.option("--min-train-orders", default=None, type=click.IntRange(1))
def train_command(
    warehouse: Path, lake, as_of, window_days, holdout_days, min_train_orders
) -> None:
    """Train the expected-cost model on the scored trade dates before --as-of (default: all of
    them), score it out of sample against the fitted baselines, and promote it if it passes."""
    from eqs_pipeline.runtime.runner import RunFailed, train_model

    config = {
        k: v
        for k, v in (
            ("window_days", window_days),
            ("holdout_days", holdout_days),
            ("min_train_orders", min_train_orders),
        )
        if v is not None
    }
    err = Console(stderr=True)
    if not warehouse.exists():
        err.print(f"[red]error:[/red] {escape(str(warehouse))} does not exist: run `eqs run` first")
        sys.exit(2)
    with err.status("training the cost model"):
        try:
            report = train_model(warehouse, lake=lake, as_of=as_of, config=config)
        except RunFailed as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            sys.exit(1)
    if report.model is None:
        err.print(f"[yellow]no model:[/yellow] {escape(report.message)}")
        sys.exit(1)
    Console().print(model_table(report.model))
