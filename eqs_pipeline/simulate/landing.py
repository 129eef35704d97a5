"""Public entry points: `simulate` (in memory), `write_landing` (a landing directory from a
`SimulatedData`) and `simulate_to_landing` (day by day straight to disk, bounded memory).

Layout: <out>/<table>/date=YYYY-MM-DD/part-0.<fmt>, <out>/instruments/instruments.<fmt>,
<out>/_truth/truth.json and <out>/_truth/{orders,fills,symbol_days}/date=YYYY-MM-DD/part-0.parquet.
The truth sits in `_truth/` because the landing contract allows only table folders at the top
level; readers skip names starting with "_" or "." (pass `truth_dir` to put it elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager, nullcontext
from datetime import date
from pathlib import Path
from typing import Literal, get_args

import polars as pl

from eqs_pipeline.core.contract import DATED_TABLES

from .config import SimulationConfig
from .engine import SimulatedData, SimulatedDay, iter_days, landed, trading_dates
from .truth import AlgoTally, VenueTally, build_truth

# The file formats of a landing directory (`write_landing`, `simulate_to_landing`).
Format = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[Format, ...] = get_args(Format)
ISO_US = "%Y-%m-%dT%H:%M:%S%.6f+00:00"
TRUTH_DIR = "_truth"


def truth_dir_for(out_dir: Path | str, truth_dir: Path | str | None = None) -> Path:
    """Where the truth of a landing directory goes: `truth_dir`, else <out_dir>/_truth."""
    return Path(truth_dir) if truth_dir is not None else Path(out_dir) / TRUTH_DIR


def load_truth(out_dir: Path | str, truth_dir: Path | str | None = None) -> dict:
    """Read back truth.json of a landing directory written by this package."""
    return json.loads((truth_dir_for(out_dir, truth_dir) / "truth.json").read_text())


def _check_formats(formats: Sequence[str]) -> tuple[Format, ...]:
    fmts = tuple(formats)
    bad = [f for f in fmts if f not in FORMATS]
    if not fmts or bad:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {fmts!r}")
    return fmts


def _write(frame: pl.DataFrame, path: Path, fmt: Format) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.write_parquet(path, statistics=True)
        return
    text = frame.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.strftime(ISO_US)
        for c, t in frame.schema.items()
        if isinstance(t, pl.Datetime)
    )
    if fmt == "csv":
        text.write_csv(path)
    else:
        text.write_ndjson(path)


def _format_for(fmts: tuple[Format, ...], table: str, day_index: int) -> Format:
    """Spread tables and days over the formats so a landing dir mixes them."""
    return fmts[(DATED_TABLES.index(table) + day_index) % len(fmts)]


def _write_day(
    out: Path, truth: Path, day: SimulatedDay, k: int, fmts: tuple[Format, ...]
) -> dict[str, int]:
    folder = f"date={day.trade_date.isoformat()}"
    for table, frame in day.tables.items():
        fmt = _format_for(fmts, table, k)
        _write(landed(table, frame), out / table / folder / f"part-0.{fmt}", fmt)
    for name, frame in (
        ("orders", day.truth_orders),
        ("fills", day.truth_fills),
        ("symbol_days", day.truth_symbol_days),
    ):
        path = truth / name / folder / "part-0.parquet"
        frame.drop("trade_date").write_parquet(path, mkdir=True)
    return {t: f.height for t, f in day.tables.items()}


def _add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    for t, n in counts.items():
        total[t] = total.get(t, 0) + n


def _write_truth(truth_dir: Path, truth: dict) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    (truth_dir / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")


@contextmanager
def _progress_bar(enabled: bool, total: int):
    if not enabled:
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("simulating days", total=total)
        yield lambda done, _n: bar.update(task, completed=done)


def _callback(progress: bool | Callable[[int, int], None], total: int):
    """A context yielding the per-day callback: the caller's own, a rich bar, or None."""
    return nullcontext(progress) if callable(progress) else _progress_bar(bool(progress), total)


def simulate(
    cfg: SimulationConfig, progress: bool | Callable[[int, int], None] = False
) -> SimulatedData:
    """Simulate a run in memory. `progress`: True for a rich bar, or a callback(done, total)."""
    with _callback(progress, cfg.days) as cb:
        uni, days = iter_days(cfg, cb)
        collected: list[SimulatedDay] = list(days)
    tally, algo_tally = VenueTally(), AlgoTally(cfg.algos)
    counts: dict[str, int] = {"instruments": uni.symbols.size}
    for day in collected:
        tally.add(day.truth_fills)
        algo_tally.add(day.truth_orders)
        _add_counts(counts, {t: f.height for t, f in day.tables.items()})
    dates = [d.trade_date for d in collected]
    tables = {
        t: pl.concat(
            [d.tables[t].with_columns(trade_date=pl.lit(d.trade_date, pl.Date)) for d in collected]
        )
        for t in DATED_TABLES
    }
    return SimulatedData(
        instruments=uni.instruments_frame(cfg.currency),
        tables=tables,
        truth=build_truth(cfg, uni, dates, tally, counts, algo_tally),
        truth_orders=pl.concat([d.truth_orders for d in collected]),
        truth_fills=pl.concat([d.truth_fills for d in collected]),
        truth_symbol_days=pl.concat([d.truth_symbol_days for d in collected]),
        trade_dates=dates,
    )


def write_landing(
    data: SimulatedData,
    out_dir: Path | str,
    formats: Iterable[Format] = ("parquet",),
    truth_dir: Path | str | None = None,
) -> dict[str, int]:
    """Write a landing directory (and its truth, by default in <out_dir>/_truth).

    With several formats, tables and days rotate through them so the directory mixes formats.
    Returns row counts per table.
    """
    fmts = _check_formats(list(formats))
    out = Path(out_dir)
    tdir = truth_dir_for(out, truth_dir)
    _write(data.instruments, out / "instruments" / f"instruments.{fmts[0]}", fmts[0])
    counts = {"instruments": data.instruments.height}
    for k, d in enumerate(data.trade_dates):
        day = SimulatedDay(
            d,
            {t: data.day(t, d) for t in DATED_TABLES},
            data.truth_orders.filter(pl.col("trade_date") == d),
            data.truth_fills.filter(pl.col("trade_date") == d),
            data.truth_symbol_days.filter(pl.col("trade_date") == d),
        )
        _add_counts(counts, _write_day(out, tdir, day, k, fmts))
    _write_truth(tdir, data.truth)
    return counts


def simulate_to_landing(
    cfg: SimulationConfig,
    out_dir: Path | str,
    formats: Iterable[Format] = ("parquet",),
    progress: bool | Callable[[int, int], None] = False,
    truth_dir: Path | str | None = None,
    on_day: Callable[[SimulatedDay], None] | None = None,
) -> dict[str, int]:
    """Simulate and write day by day (memory bounded by one day); same files as
    `write_landing(simulate(cfg), out_dir, formats, truth_dir)`. Returns row counts per table.
    `on_day(day)` is called with each simulated day once it is written (e.g. to write the
    last one as an intraday session too: `simulate.intraday.write_session`)."""
    fmts = _check_formats(list(formats))
    out = Path(out_dir)
    tdir = truth_dir_for(out, truth_dir)
    tally, algo_tally = VenueTally(), AlgoTally(cfg.algos)
    with _callback(progress, cfg.days) as cb:
        uni, days = iter_days(cfg, cb)
        _write(
            uni.instruments_frame(cfg.currency),
            out / "instruments" / f"instruments.{fmts[0]}",
            fmts[0],
        )
        counts: dict[str, int] = {"instruments": uni.symbols.size}
        for k, day in enumerate(days):
            tally.add(day.truth_fills)
            algo_tally.add(day.truth_orders)
            _add_counts(counts, _write_day(out, tdir, day, k, fmts))
            if on_day is not None:
                on_day(day)
    dates: list[date] = trading_dates(cfg.start_date, cfg.days)
    _write_truth(tdir, build_truth(cfg, uni, dates, tally, counts, algo_tally))
    return counts
