"""Landing directories: layout, mixed formats that read back to the same rows, the truth file,
and byte-identical output for one seed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from eqs_pipeline.core.contract import CONTRACT, DATED_TABLES
from eqs_pipeline.simulate import (
    SimulatedData,
    load_truth,
    simulate,
    simulate_to_landing,
    write_landing,
)

from .conftest import SMALL


def _read(path: Path, table: str) -> pl.DataFrame:
    """Read one landed file the way an ingester would, coerced to the contract types (an
    optional column the file lacks as nulls)."""
    spec = CONTRACT[table]
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        return frame.select(
            pl.col(c) if c in frame.columns else pl.lit(None, t).alias(c)
            for c, t in spec.polars_schema.items()
        )
    frame = pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.read_ndjson(path)
    return frame.select(
        pl.lit(None, t).alias(c)
        if c not in frame.columns
        else pl.col(c)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us")
        .dt.convert_time_zone("UTC")
        if c in spec.timestamp_columns
        else pl.col(c).cast(t)
        for c, t in spec.polars_schema.items()
    )


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_mixed_formats_round_trip(small: SimulatedData, tmp_path: Path) -> None:
    counts = write_landing(small, tmp_path, formats=("parquet", "csv", "jsonl"))
    suffixes = set()
    for table in DATED_TABLES:
        total = 0
        for d in small.trade_dates:
            files = list((tmp_path / table / f"date={d.isoformat()}").glob("part-0.*"))
            assert len(files) == 1
            suffixes.add(files[0].suffix)
            got = _read(files[0], table)
            want = small.day(table, d)
            assert got.equals(want), (table, d, files[0].suffix)
            total += got.height
        assert counts[table] == total == small.tables[table].height
    assert suffixes == {".parquet", ".csv", ".jsonl"}
    inst = list((tmp_path / "instruments").iterdir())
    assert [p.name for p in inst] == ["instruments.parquet"]
    assert pl.read_parquet(inst[0]).equals(small.instruments)


def test_csv_and_jsonl_timestamps_are_iso_with_offset(small: SimulatedData, tmp_path: Path) -> None:
    write_landing(small, tmp_path, formats=("csv", "jsonl"))
    csv = next(tmp_path.glob("*/date=*/part-0.csv"))
    first = csv.read_text().splitlines()[1]
    assert "+00:00" in first
    line = json.loads(next(tmp_path.glob("*/date=*/part-0.jsonl")).read_text().splitlines()[0])
    stamps = [v for v in line.values() if isinstance(v, str) and v.endswith("+00:00")]
    assert stamps and all(len(s) == len("2026-11-02T14:30:00.123456+00:00") for s in stamps)


def test_truth_file(small: SimulatedData, tmp_path: Path) -> None:
    write_landing(small, tmp_path)
    # Only contract table folders are visible at the top; the truth hides in _truth/.
    visible = {p.name for p in tmp_path.iterdir() if not p.name.startswith(("_", "."))}
    assert visible == set(CONTRACT)
    truth = load_truth(tmp_path)
    assert {
        "config",
        "trade_dates",
        "venues",
        "symbols",
        "brokers",
        "traders",
        "impact",
        "row_counts",
    } <= set(truth)
    assert set(truth["symbols"]) == set(small.instruments["symbol"])
    assert len(truth["venues"]) >= 8
    for v in truth["venues"].values():
        assert {
            "maker_fee",
            "taker_fee",
            "fill_prob_passive",
            "latency_ms",
            "pi_frac_mean",
            "kappa_bps",
        } <= set(v)
    orders = pl.read_parquet(
        tmp_path / "_truth" / "orders" / f"date={small.trade_dates[0]}" / "part-0.parquet"
    )
    assert orders.height == small.day("orders", small.trade_dates[0]).height
    assert {"expected_impact_cost_bps", "participation", "impact_multiplier"} <= set(orders.columns)


def test_same_seed_byte_identical_and_streaming_matches(tmp_path: Path) -> None:
    write_landing(simulate(SMALL), tmp_path / "a", formats=("parquet", "csv", "jsonl"))
    write_landing(simulate(SMALL), tmp_path / "b", formats=("parquet", "csv", "jsonl"))
    simulate_to_landing(SMALL, tmp_path / "c", formats=("parquet", "csv", "jsonl"))
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert a == c


def test_other_seed_differs(small: SimulatedData) -> None:
    from dataclasses import replace

    other = simulate(replace(SMALL, seed=SMALL.seed + 1))
    assert not other.tables["executions"].equals(small.tables["executions"])


def test_bad_format_is_refused(small: SimulatedData, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="formats"):
        write_landing(small, tmp_path, formats=("xlsx",))


def test_progress_callback_sees_every_day(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    counts = simulate_to_landing(
        SMALL, tmp_path, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(1, 2), (2, 2)]
    assert counts["executions"] > 0
