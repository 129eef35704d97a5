"""The inputs fingerprint of a trade date: the same from the whole landing's listing (what
`eqs run` compares) and from the date's own folders (what staging records), and changed by
whatever changes the date's outputs."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from eqs_pipeline.ingest.fingerprint import (
    INSTRUMENTS,
    date_files,
    inputs_fingerprint,
    landed_files,
)

DAY = date(2026, 11, 2)


def _landing(root: Path) -> Path:
    for table in ("orders", "executions"):
        folder = root / table / f"date={DAY}"
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"rows of " + table.encode())
    (root / "executions" / f"date={DAY}" / "nested").mkdir()  # a folder is not a file
    (root / "quotes" / "date=2026-11-03").mkdir(parents=True)  # another date, no files
    (root / "instruments").mkdir()
    (root / "instruments" / "instruments.csv").write_text("symbol\nAAPL\n")
    (root / "instruments" / ".instruments.csv.swp").write_text("an editor's file")
    return root


def _of(files: dict, day: date = DAY, settings: str = "{}") -> str:
    return inputs_fingerprint(files[day.isoformat()], files[INSTRUMENTS], settings)


def test_the_landing_and_the_dates_folders_give_the_same_fingerprint(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    whole, own = landed_files(landing), date_files(landing, DAY)
    assert _of(whole) == _of(own)
    assert len(own[DAY.isoformat()]) == 2 and len(own[INSTRUMENTS]) == 1
    assert whole["2026-11-03"] == []


def test_a_touched_file_new_instruments_or_other_settings_change_it(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    before = _of(landed_files(landing))
    assert _of(landed_files(landing), settings='{"chunk_fills": 1}') != before
    landed = landing / "orders" / f"date={DAY}" / "part-0.parquet"
    stat = landed.stat()
    os.utime(landed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = _of(landed_files(landing))
    assert touched != before
    (landing / "instruments" / "more.csv").write_text("symbol\nMSFT\n")
    assert _of(landed_files(landing)) not in (before, touched)
