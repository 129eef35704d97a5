"""`eqs train` and the model table that `eqs train`, `eqs demo` and `eqs summary` print."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from eqs_pipeline.cli.main import main
from eqs_pipeline.cli.model import model_table
from eqs_pipeline.tables.model import FIGURES, SCORED


def _row(promoted: bool) -> dict:
    row = {
        "model_version": "cm-0123456789abcdef",
        "trained_at": datetime(2026, 11, 7, tzinfo=UTC),
        "train_start": date(2026, 11, 2),
        "train_end": date(2026, 11, 3),
        "holdout_start": date(2026, 11, 4),
        "holdout_end": date(2026, 11, 6),
        "holdout_orders": 1234,
        "promoted": promoted,
        "promotion_reason": "held-out NLL 5.1 below the best baseline's (istar: 5.3)",
    }
    for k, who in enumerate(SCORED):
        for name, _, _ in FIGURES:
            row[f"{who}_{name}"] = 5.0 + k / 10 if name == "nll" else 0.5
    row["sqrt_r2"] = None  # a figure that could not be computed prints as "-"
    return row


def test_model_table_shows_the_model_beside_each_baseline() -> None:
    console = Console(record=True, width=200)
    console.print(model_table(_row(promoted=True)))
    text = console.export_text()
    assert "cm-0123456789abcdef (promoted)" in text and "1,234 orders" in text
    for name in ("cost model", "square-root law", "Almgren 2005", "I-Star"):
        assert name in text
    assert "5.300" in text and "50.0%" in text and " - " in text
    assert "below the best baseline" in text
    console = Console(record=True, width=200)
    console.print(model_table(_row(promoted=False)))
    assert "(not promoted)" in console.export_text()


def test_train_without_a_warehouse_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2
    assert "does not exist: run `eqs run` first" in " ".join(result.output.split())


def test_train_rejects_a_bad_as_of(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["train", "--warehouse", str(tmp_path / "w.duckdb"), "--as-of", "soon"]
    )
    assert result.exit_code == 2 and "is not a date" in result.output
