"""The window's stored venue rows (`defs.venues.window`): venue_daily stores each date's, the
window reads them, and rows that no longer match their inputs or settings are built again."""

import dataclasses
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline.defs.venues import window
from eqs_pipeline.storage import lake
from eqs_pipeline.venues.settings import VenueSettings

pytestmark = pytest.mark.integration


class _Built(window.LakeWindow):
    """The lake's window built from the tables, never from stored rows."""

    def stored(self, day, settings):
        return None


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    """Categoricals as text: two windows' categories differ, their values do not."""
    categorical = [c for c, t in frame.schema.items() if isinstance(t, pl.Categorical)]
    return frame.with_columns(pl.col(categorical).cast(pl.String))


def test_the_window_from_stored_rows_is_the_window_built_from_the_tables(built_warehouse):
    root = str(built_warehouse[1].parent / "lake")
    settings = VenueSettings()
    dates = lake.partition_dates(root, "quality.fill_quality")
    assert dates and all(window.stored_rows(root, d, settings) is not None for d in dates)
    stored = window.load_window(window.LakeWindow(root), settings)
    built = window.load_window(_Built(root), settings)
    for name in ("fills", "children"):
        assert_frame_equal(_text(getattr(stored, name)), _text(getattr(built, name)))
    assert_frame_equal(stored.symbol_days.sort(pl.all()), built.symbol_days.sort(pl.all()))
    for name in ("waits", "drift"):
        key = [c for c in getattr(stored.delays, name).columns if c not in ("unfilled_qty",
               "unfilled_wait", "drift_qty_bps", "qty_s")]  # fmt: skip
        assert_frame_equal(
            getattr(stored.delays, name).sort(key), getattr(built.delays, name).sort(key)
        )


def test_rows_are_not_read_once_an_input_or_the_settings_change(built_warehouse, tmp_path):
    root = str(tmp_path / "lake")
    shutil.copytree(built_warehouse[1].parent / "lake", root)  # the lake alone: it changes
    settings = VenueSettings()
    day = lake.partition_dates(root, "quality.fill_quality")[0]
    assert window.stored_rows(root, day, settings) is not None
    other = dataclasses.replace(settings, all_in_horizon_s=5)
    assert window.stored_rows(root, day, other) is None  # other settings
    fills = Path(lake.partition_path(root, "quality.fill_quality", day))
    stat = fills.stat()
    os.utime(fills, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert window.stored_rows(root, day, settings) is None  # its scored fills written since
    Path(lake.partition_path(root, "quality.fill_quality", day)).unlink()
    assert window.stored_rows(root, day, settings) is None  # an input gone
    other_day = lake.partition_dates(root, "quality.fill_quality")[-1]
    assert window.stored_rows(root, other_day, settings) is not None
    Path(lake.partition_path(root, window.CHILD_ROWS, other_day)).write_bytes(b"not parquet")
    assert window.stored_rows(root, other_day, settings) is None  # unreadable: built again
