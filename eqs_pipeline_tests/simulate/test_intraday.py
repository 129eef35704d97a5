"""The simulator's intraday mode (`simulate.intraday`): a day cut into micro-batches of data time,
every row in exactly one batch, by the time it happened, written atomically into the drop
folder; and the test bed that injects a shift at a known minute."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from eqs_pipeline.simulate import SimulationConfig, iter_days
from eqs_pipeline.simulate.engine import session_open_us
from eqs_pipeline.simulate.intraday import (
    BATCH_TIME,
    batches,
    intraday_test_bed,
    write_batch,
    write_session,
)


@pytest.fixture(scope="module")
def day():
    _, days = iter_days(SimulationConfig(days=1, symbols=4, orders_per_day=60, seed=5))
    return next(days)


def test_every_row_lands_once_in_the_batch_of_its_time(day) -> None:
    open_us = session_open_us(day.trade_date, "America/New_York")
    cut = list(batches(day, batch_s=600))
    assert [b.index for b in cut] == list(range(39))  # 6.5 hours of 10-minute batches
    for table, column in BATCH_TIME.items():
        whole = pl.concat([b.tables[table] for b in cut])
        assert whole.sort(pl.all()).equals(day.tables[table].sort(pl.all())), table
        for b in cut[1:-1]:  # the first and last batches also take what is outside the session
            t = b.tables[table][column].dt.epoch("us") - open_us
            assert ((t >= b.index * 600e6) & (t < (b.index + 1) * 600e6)).all(), (table, b.index)
    assert sum(b.tables["executions"].height for b in cut) == day.tables["executions"].height > 0
    assert [b.name for b in cut[:2]] == ["batch-000000.parquet", "batch-001000.parquet"]


def test_batches_are_written_atomically_in_the_drop_layout(day, tmp_path) -> None:
    first = next(batches(day, batch_s=60))
    paths = write_batch(tmp_path, day.trade_date, first)
    folder = f"date={day.trade_date.isoformat()}"
    assert [p.relative_to(tmp_path).parts for p in paths] == [
        (t, folder, "batch-000000.parquet")
        for t in ("orders", "child_orders", "quotes", "market_trades", "executions")
    ]
    assert not list(tmp_path.rglob(".*"))  # no temporary file left
    assert pl.read_parquet(paths[-1]).equals(first.tables["executions"])
    n = write_session(tmp_path / "part", day, batch_s=60, until_s=90 * 60)
    assert n == 90 and len(list((tmp_path / "part" / "quotes").rglob("*.parquet"))) == 90


def test_the_test_bed_degrades_its_last_session_from_the_given_minute() -> None:
    cfg = intraday_test_bed(baseline_days=5, venue="LTB", onset_minute=120)
    assert cfg.days == 6 and cfg.routing == "dark-lit"
    assert cfg.degradation.venue == "LTB" and cfg.degradation.start_s == 7200.0
    assert cfg.degradation.start == date(2026, 11, 9)  # the sixth weekday from 2026-11-02
    assert cfg.degradation.onset_s(cfg.degradation.start - timedelta(days=1)) is None
    assert intraday_test_bed(venue=None).degradation is None
    with pytest.raises(ValueError, match="batch_s"):
        next(batches(None, batch_s=0))
