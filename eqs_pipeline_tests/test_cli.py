"""The `eqs` command line: exit codes and messages a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from eqs_pipeline.cli.main import main


def test_run_on_a_missing_landing_directory_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["run", "--landing", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "w.duckdb")],
    )
    assert result.exit_code == 2
    assert "nope" in result.output and "error" in result.output


@pytest.mark.integration
def test_simulate_then_run_then_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    sim = runner.invoke(
        main,
        [
            "simulate",
            "--days",
            "1",
            "--symbols",
            "3",
            "--orders-per-day",
            "20",
            "--out",
            str(landing),
        ],
    )
    assert sim.exit_code == 0, sim.output
    assert (landing / "orders").is_dir() and (landing / "_truth" / "truth.json").is_file()
    lake = tmp_path / "elsewhere"
    run = runner.invoke(  # the landing directory from EQS_LANDING, as a deployment sets it
        main,
        ["run", "--warehouse", str(warehouse), "--lake", str(lake)],
        env={"EQS_LANDING": str(landing)},
    )
    assert run.exit_code == 0, run.output
    assert "parent orders" in run.output and "20" in run.output
    # The daily partitions went to the lake given, not beside the warehouse.
    assert len(list((lake / "quality" / "fill_quality").glob("trade_date=*/*.parquet"))) == 1
    assert not (tmp_path / "lake").exists()
    summary = runner.invoke(main, ["summary", "--warehouse", str(warehouse)])
    assert summary.exit_code == 0 and "implementation shortfall" in summary.output
    # The algo tables were built; 20 orders rank no algo, and no model prices a saving.
    assert _figure(summary.output, "algos in the first tier") == "none ranked"
    assert "no cost model in service" in summary.output


def _figure(output: str, name: str) -> str:
    """The value printed beside `name` in the summary table."""
    (line,) = [line for line in output.splitlines() if name in line]
    return line.split(name, 1)[1].strip(" │|").strip()


@pytest.mark.integration
def test_summary_counts_the_orders_a_symbol_without_market_data_leaves_ungraded(
    tmp_path: Path,
) -> None:
    """One symbol's quotes and tape removed from the landing: the run warns through the
    `market_data` checks and the summary counts its orders as not graded and its fills as
    without a prior quote; the grades count the other orders only."""
    import duckdb
    import polars as pl

    from eqs_pipeline.cli.summary import headline_figures

    runner = CliRunner()
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    args = ["--days", "1", "--symbols", "3", "--orders-per-day", "20", "--out", str(landing)]
    assert runner.invoke(main, ["simulate", *args]).exit_code == 0
    symbol = pl.read_parquet(landing / "orders" / "*" / "*.parquet")["symbol"].min()
    for table in ("quotes", "market_trades"):
        for part in (landing / table).glob("date=*/*.parquet"):
            rows = pl.read_parquet(part)
            rows.filter(pl.col("symbol") != symbol).write_parquet(part)

    run = runner.invoke(main, ["run", "--landing", str(landing), "--warehouse", str(warehouse)])
    assert run.exit_code == 0, run.output
    assert "quality/order_quality:market_data" in run.output
    assert "quality/fill_quality:market_data" in run.output
    with duckdb.connect(str(warehouse), read_only=True) as con:
        orders, fills, graded = con.execute(
            "select (select count(*) from quality.order_quality where symbol = $s), "
            "(select count(*) from quality.fill_quality where symbol = $s), "
            "(select count(*) from quality.order_quality where quality_grade is not null)",
            {"s": symbol},
        ).fetchall()[0]
    assert orders > 0 and fills > 0 and graded > 0
    summary = runner.invoke(main, ["summary", "--warehouse", str(warehouse)])
    assert summary.exit_code == 0, summary.output
    assert _figure(summary.output, "orders not graded") == f"{orders:,}"
    assert _figure(summary.output, "fills without a prior quote") == f"{fills:,}"
    grades = headline_figures(warehouse)["grades"]
    assert None not in grades and sum(grades.values()) == graded


def test_demo_refuses_to_overwrite_a_foreign_landing_directory(tmp_path: Path) -> None:
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    result = CliRunner().invoke(main, ["demo", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.output
    assert (tmp_path / "landing" / "orders").is_dir()


def test_summary_without_a_warehouse_says_how_to_build_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["summary", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2
    assert "eqs run" in result.output


def test_summary_of_a_warehouse_without_trade_dates_says_so(tmp_path: Path) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "w.duckdb")).close()  # e.g. only the reference data ran
    result = CliRunner().invoke(main, ["summary", "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "no trade date has been loaded" in result.output


def test_demo_home_from_eqs_home(tmp_path: Path) -> None:
    """The refusal says "--home (or EQS_HOME)": both must choose the folder."""
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    result = CliRunner().invoke(main, ["demo"], env={"EQS_HOME": str(tmp_path)})
    assert result.exit_code == 2
    assert str(tmp_path / "landing") in result.output.replace("\n", "")


@pytest.mark.integration
def test_import_lobster_then_run_stages_the_real_quotes_and_tape(tmp_path: Path) -> None:
    import duckdb

    from eqs_pipeline_tests.lobster.samples import ZIPS

    if not all(p.is_file() for p in ZIPS.values()):
        pytest.skip("LOBSTER samples not found beside the repository (../shared/data/lobster)")
    runner = CliRunner()
    landing, warehouse = tmp_path / "lobster", tmp_path / "w.duckdb"
    imported = runner.invoke(
        main, ["import-lobster", *map(str, ZIPS.values()), "--out", str(landing)]
    )
    assert imported.exit_code == 0, imported.output
    run = runner.invoke(main, ["run", "--landing", str(landing), "--warehouse", str(warehouse)])
    assert run.exit_code == 0, run.output
    with duckdb.connect(str(warehouse), read_only=True) as con:
        quotes, symbols = con.execute(
            "select count(*), count(distinct symbol) from staging.quotes"
        ).fetchall()[0]
        trades = con.execute("select sum(size) from staging.market_trades").fetchall()[0][0]
        quarantined = con.execute("select count(*) from staging.quarantine").fetchall()[0][0]
    assert "trade dates" in run.output and "1 (2012-06-21 .. 2012-06-21)" in run.output
    assert symbols == 2 and quotes > 90_000
    assert trades == 810_755 + 706_125  # the README's executed shares, AMZN + GOOG
    assert quarantined == 0


def test_a_landing_path_that_looks_like_markup_is_quoted_literally(tmp_path: Path) -> None:
    """A folder named like rich markup is named as it is in the error, not as the text the
    markup would leave ("date=2026-11-02[" for "date=[red]2026-11-02[/red]")."""
    landing = tmp_path / "date=[red]2026-11-02[/red]"
    result = CliRunner().invoke(
        main, ["run", "--landing", str(landing), "--warehouse", str(tmp_path / "w.duckdb")]
    )
    assert result.exit_code == 2
    assert "date=[red]2026-11-02[/red]" in "".join(result.output.split())  # rich wraps lines


def test_degrade_takes_a_date_and_a_time_on_the_markets_clock() -> None:
    from datetime import date

    import click

    from eqs_pipeline.cli.main import _degradation

    assert _degradation("LTB@2026-11-10").start_s == 0.0
    timed = _degradation("LTB@2026-11-10T11:30")
    assert (timed.venue, timed.start, timed.start_s) == ("LTB", date(2026, 11, 10), 7200.0)
    for bad in ("LTB", "LTB@2026-13-01", "LTB@2026-11-10T09:00", "LTB@2026-11-10T11"):
        with pytest.raises(click.BadParameter, match="VENUE@YYYY-MM-DD"):
            _degradation(bad)
