"""Benchmark data sets: simulated once with `simulate_to_landing`, cached in perf/.cache/.

A data set is a landing directory (the data contract's layout); `staged` reads one of its tables
as the staging layer hands it to the metric engine (contract dtypes plus `trade_date`), so the
benchmark runs exactly the functions the assets call, on the same frames.

Row order within a day's files is the data set's `layout`. The simulator lands quotes and the
tape in per-symbol blocks (as a per-symbol extract, or LOBSTER, would) and fills in time order;
a `time` data set holds the same rows with quotes, tape and fills in time order across symbols,
as a consolidated feed lands them. Sorting costs differ between the two, for the kernels and
the pipeline alike, so the benchmark measures both.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path

import polars as pl

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.simulate import SimulationConfig, simulate_to_landing

CACHE = Path(__file__).parent / ".cache"
MARKER = "dataset.json"


@dataclass(frozen=True)
class DatasetSpec:
    """A named simulation size. About 5 quotes and 3 tape prints per fill (simulator defaults)."""

    name: str
    days: int
    symbols: int
    orders_per_day: int
    seed: int = 11
    layout: str = "blocks"  # "blocks" (as simulated) or "time" (re-sorted from the blocks set)

    def config(self) -> SimulationConfig:
        return SimulationConfig(
            days=self.days,
            symbols=self.symbols,
            orders_per_day=self.orders_per_day,
            seed=self.seed,
        )

    @property
    def folder(self) -> Path:
        return (
            CACHE / f"{self.name}-d{self.days}-s{self.symbols}-o{self.orders_per_day}-r{self.seed}"
        )


SPECS: dict[str, DatasetSpec] = {
    "tiny": DatasetSpec("tiny", days=2, symbols=20, orders_per_day=150),
    "tiny-time": DatasetSpec("tiny-time", days=2, symbols=20, orders_per_day=150, layout="time"),
    "100k": DatasetSpec("100k", days=2, symbols=100, orders_per_day=1000),
    "1m": DatasetSpec("1m", days=5, symbols=500, orders_per_day=4200),
    "10m": DatasetSpec("10m", days=20, symbols=1000, orders_per_day=10500),
    "10m-time": DatasetSpec("10m-time", days=20, symbols=1000, orders_per_day=10500, layout="time"),
    # 20 small trade dates, about 9k fills each (7.3k-10.1k; 185k in all): the e2e case's history.
    "small20": DatasetSpec("small20", days=20, symbols=20, orders_per_day=300),
}

# Tables re-sorted for the time layout, with their time column.
TIME_ORDERED = {"quotes": "ts", "market_trades": "ts", "executions": "exec_ts"}


def ensure(spec: DatasetSpec, root: Path | None = None) -> tuple[Path, dict]:
    """The data set's landing folder and row counts, simulating it first if it is not cached."""
    folder = (root or CACHE) / spec.folder.name
    marker = folder / MARKER
    if marker.exists():
        return folder, json.loads(marker.read_text())
    start = time.perf_counter()
    if spec.layout == "time":
        base, base_info = ensure(
            replace(spec, name=spec.name.removesuffix("-time"), layout="blocks"), root
        )
        counts = base_info["counts"]
        _time_ordered_copy(base, folder)
    else:
        counts = simulate_to_landing(spec.config(), folder)
    info = {
        "spec": asdict(spec),
        "counts": counts,
        "simulate_s": time.perf_counter() - start,
        "dates": [d.isoformat() for d in trade_dates(folder)],
    }
    marker.write_text(json.dumps(info, indent=1))
    return folder, info


def _time_ordered_copy(base: Path, folder: Path) -> None:
    """The base data set with quotes, tape and fills of each file in time order (stable); the
    other tables are hard links to the base's files."""
    for table in base.iterdir():
        if not table.is_dir():
            continue
        if table.name not in TIME_ORDERED:
            shutil.copytree(table, folder / table.name, copy_function=os.link, dirs_exist_ok=True)
            continue
        for source in sorted(table.rglob("*.parquet")):
            target = folder / source.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            frame = pl.read_parquet(source).sort(TIME_ORDERED[table.name], maintain_order=True)
            frame.write_parquet(target)


def trade_dates(folder: Path) -> list[date]:
    return sorted(
        date.fromisoformat(p.name.removeprefix("date=")) for p in (folder / "executions").iterdir()
    )


def staged(
    folder: Path, table: str, dates: list[date] | None = None, columns: list[str] | None = None
) -> pl.LazyFrame:
    """A landed table read as staged rows: contract dtypes plus trade_date (dated tables)."""
    contract = CONTRACT[table]
    if not contract.dated:
        frame = pl.scan_parquet(folder / table / "*.parquet")
        return frame.with_columns(pl.col(c).cast(t) for c, t in contract.polars_schema.items())
    files = [
        str(p)
        for d in (dates or trade_dates(folder))
        for p in sorted((folder / table / f"date={d}").glob("*.parquet"))
    ]
    frame = pl.scan_parquet(files, hive_partitioning=True).rename({"date": "trade_date"})
    schema = contract.polars_schema
    wanted = columns or [*schema, "trade_date"]
    # An optional column the files lack (a desk without an algo wheel lands no `allocation`)
    # is null, as ingestion stages it.
    present = set(frame.collect_schema().names())
    return frame.select(
        (pl.col(c) if c in present else pl.lit(None)).cast(schema[c]).alias(c)
        if c in schema
        else pl.col(c)
        for c in wanted
    )
