"""Daily steps over several trade dates in one run: their outputs, checks and metadata.

A run materializes one trade date, or a range of them (Dagster's partition range: `eqs run`
puts consecutive small dates in one run, `eqs_pipeline.runtime.runner`). A daily step computes
and writes its dates one at a time, as it would in runs of their own, and keeps each date's
output frame (`Outputs`) for what it reports once for the run: the blocking schema check, one
pandera validation of all the dates' rows (pandera's cost is mostly per call: about 0.36 s a
small date over a day's tables, little more for ten such dates together), and the
materialization metadata. A check that judges each date on its own (the share of fills without market data)
is evaluated per date and reported as one result (`combined`).

Only dates small enough to hold together share a run (less than `runner.BATCH_BYTES` of landed
files in all), so a step holds no more than one date of that size would. Such dates are worked
on by several threads at once (`each_date`): a small date's work is many short Polars, NumPy
and Parquet calls, which release the GIL, so the cores that one date leaves idle take the next.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from typing import TypeVar

import dagster as dg
import polars as pl

from eqs_pipeline.defs.checks import schema_check_result
from eqs_pipeline.defs.metadata import frame_metadata, markdown_table
from eqs_pipeline.storage import lake


@contextmanager
def on_date(day: date, dates: list[date]) -> Iterator[None]:
    """A step's work on one of the run's trade dates: where the run has several, an error
    names the date it happened on (`dg.Failure`, caused by the error); where it has one, the
    error is raised as it is."""
    try:
        yield
    except Exception as exc:
        if len(dates) == 1 or (isinstance(exc, dg.Failure) and str(day) in (exc.description or "")):
            raise
        raise dg.Failure(description=f"trade date {day}: {type(exc).__name__}: {exc}") from exc


T = TypeVar("T")

# A run's dates are worked on together when their files (bytes per date: `each_date`) hold at
# most this much in all; larger dates one at a time, so that a step's memory follows one date.
PARALLEL_BYTES = 64 * 2**20
# Threads for dates worked on together: one more than the cores, so that a core whose thread
# holds the GIL (building Polars expressions, Dagster) leaves the other work to run. 20 dates of
# 9k fills staged on two cores: 4.4 s on one thread, 2.9 s on two, 2.6 s on three.
DATE_THREADS = (os.cpu_count() or 1) + 1


def each_date(
    days: list[date], work: Callable[[date], T], sizes: Mapping[date, int] | None = None
) -> list[T]:
    """`work(day)` of each of the run's trade dates, in date order, each under `on_date`.

    Several dates whose `sizes` (the bytes of their input files) add up to at most
    `PARALLEL_BYTES` are worked on by up to `DATE_THREADS` threads at once (`work` must then
    touch only its own date's files and state); one date, or dates without sizes or larger
    ones, in turn on this thread. The first failing date in date order is what fails the step;
    the dates not started by then are not."""

    def one(day: date) -> T:
        with on_date(day, days):
            return work(day)

    together = len(days) > 1 and sizes is not None and sum(sizes.values()) <= PARALLEL_BYTES
    if not together or DATE_THREADS < 2:
        return [one(day) for day in days]
    pool = ThreadPoolExecutor(max_workers=min(DATE_THREADS, len(days)), thread_name_prefix="eqs")
    try:
        futures = [pool.submit(one, day) for day in days]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def lake_bytes(root: str, tables: list[str], days: list[date]) -> dict[date, int]:
    """Bytes of each date's lake partitions of `tables` (the sizes `each_date` takes)."""
    return {day: sum(lake.size(root, table, day) for table in tables) for day in days}


def partition_dates(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> list[date]:
    """The trade dates of the run: its partition, or every partition of its range."""
    return [date.fromisoformat(key) for key in context.partition_keys]


class Outputs:
    """One asset's output frames of the run's trade dates, in date order."""

    def __init__(self, key: dg.AssetKey) -> None:
        self.key = key
        self.frames: dict[date, pl.DataFrame] = {}
        self._whole: pl.DataFrame | None = None  # the dates' rows stacked, once

    @property
    def table(self) -> str:
        return ".".join(self.key.path)

    def add(self, day: date, frame: pl.DataFrame) -> None:
        self.frames[day] = frame
        self._whole = None

    def whole(self) -> pl.DataFrame:
        """Every date's rows (the one date's frame itself when there is one), stacked once for
        the step's figures, metadata and schema check."""
        if self._whole is None:
            frames = list(self.frames.values())
            self._whole = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
        return self._whole

    def schema_check(self) -> dg.AssetCheckResult:
        """The blocking schema check of all the dates' rows: one validation where their frames
        stack, each date's alone where they do not (a frame with a column too many or of
        another type: its own failure is then what the check reports)."""
        try:
            return schema_check_result(self.key, self.whole())
        except pl.exceptions.PolarsError:
            return combined({d: schema_check_result(self.key, f) for d, f in self.frames.items()})

    def metadata(
        self, figures: Mapping[str, float | None] | None = None, **extra: dg.MetadataValue
    ) -> dict[str, dg.MetadataValue]:
        """`frame_metadata` of all the dates' rows; over several dates the row count is the
        run's (a materialization of a range carries the range's metadata) and
        `rows_by_trade_date` gives each date's."""
        frame = self.whole()
        meta = frame_metadata(frame, figures)
        if len(self.frames) > 1:
            meta["trade_dates"] = dg.MetadataValue.int(len(self.frames))
            counts = pl.DataFrame(
                {"trade_date": list(self.frames), "rows": [f.height for f in self.frames.values()]}
            )
            meta["rows_by_trade_date"] = dg.MetadataValue.md(
                markdown_table(counts, max_rows=counts.height)
            )
        return {**meta, **extra}


def combined(results: Mapping[date, dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """One result for each date's result of the same check: it passes when every date passes,
    names the failing dates and carries the first failing date's metadata (else the last
    date's), with how many dates were checked and failed."""
    if len(results) == 1:
        return next(iter(results.values()))
    failed = [d for d, r in results.items() if not r.passed]
    shown = results[failed[0]] if failed else list(results.values())[-1]
    description = shown.description
    if failed:
        description = f"failed on {', '.join(map(str, failed))}: {description or ''}".rstrip(": ")
    return dg.AssetCheckResult(
        check_name=shown.check_name,
        asset_key=shown.asset_key,
        passed=not failed,
        severity=shown.severity,
        description=description,
        metadata={
            **(shown.metadata or {}),
            "trade_dates_checked": dg.MetadataValue.int(len(results)),
            "trade_dates_failed": dg.MetadataValue.int(len(failed)),
        },
    )
