"""Tier 3: the algo assets end to end on the session's built warehouse of the small desk and on
its rematerialized copy (nothing doubles, nothing moves), and `eqs algos`."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from eqs_pipeline.cli.algos import algos_command
from eqs_pipeline.defs.algos.assets import KEYS

pytestmark = pytest.mark.integration

TABLES = tuple(".".join(key.path) for key in KEYS)


def _counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


def test_every_algo_table_built_and_a_rerun_replaces_it(built_warehouse, rerun_warehouse):
    _, warehouse, report = built_warehouse
    assert report.check_failures == []
    first = _counts(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        algos = con.execute("select count(distinct algo) from staging.orders").fetchone()[0]
        orders = con.execute("select count(*) from quality.order_quality").fetchone()[0]
        daily_all = con.execute(
            "select count(*) from algo.algo_daily where breakdown = 'all'"
        ).fetchone()[0]
        pairs = con.execute(
            "select count(distinct (trade_date, algo)) from quality.order_quality"
        ).fetchone()[0]
    assert first["algo.algo_scorecard"] == algos
    assert first["algo.algo_selection"] == orders
    assert daily_all == pairs
    assert _counts(rerun_warehouse.warehouse) == first
    # Every figure equal after the forced rerun and after one date's rerun.
    assert rerun_warehouse.after_all == rerun_warehouse.after_one == []


def test_the_window_job_reruns_when_only_the_algo_window_changed(built_copy) -> None:
    """`eqs run` skips the window job only when the venue and the algo fingerprints both hold:
    a stale algo scorecard alone (other settings, code or cost model) brings it back."""
    from eqs_pipeline.defs.resources import EqsPathsResource
    from eqs_pipeline.runtime.runner import _window_unchanged

    _, warehouse, _ = built_copy
    paths = EqsPathsResource(
        home=str(warehouse.parent), warehouse=str(warehouse), lake=str(warehouse.parent / "lake")
    )
    assert _window_unchanged(paths)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update algo.algo_scorecard set inputs_fingerprint = 'stale'")
    assert not _window_unchanged(paths)


def test_eqs_algos_prints_the_scorecard(built_warehouse) -> None:
    _, warehouse, _ = built_warehouse
    result = CliRunner().invoke(algos_command, ["--warehouse", str(warehouse)], terminal_width=200)
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert "Algo scorecard" in words and "95% intervals" in words
    assert "VWAP" in result.output
    # The small desk has fewer orders per algo than min_orders: the note says why none ranks.
    assert "not ranked" in result.output
    again = CliRunner().invoke(algos_command, ["--warehouse", str(warehouse), "--window", "1"])
    assert again.exit_code == 0, again.output
    assert "1 trade dates" in again.output
    missing = CliRunner().invoke(
        algos_command, ["--warehouse", str(warehouse.parent / "no.duckdb")]
    )
    assert missing.exit_code == 2
