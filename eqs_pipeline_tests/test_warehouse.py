"""Partition writes replace exactly their partition, in one transaction; a connection waits for
another process holding the file, or names it."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from eqs_pipeline.storage import warehouse

D1, D2 = date(2026, 1, 5), date(2026, 1, 6)


def frame(day: date, n: int, extra: bool = False) -> pl.DataFrame:
    data = {"trade_date": [day] * n, "x": list(range(n))}
    if extra:
        data["y"] = [1.5] * n
    return pl.DataFrame(data)


def test_replace_partition_replaces_only_its_date(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    with warehouse.transaction(con):
        warehouse.replace_partition(con, "quality.t", frame(D1, 3), D1)
        warehouse.replace_partition(con, "quality.t", frame(D2, 2), D2)
    with warehouse.transaction(con):
        warehouse.replace_partition(con, "quality.t", frame(D1, 1), D1)
    got = dict(con.execute("select trade_date, count(*) from quality.t group by 1").fetchall())
    assert got == {D1: 1, D2: 2}


def test_a_failed_write_leaves_the_previous_rows(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    with warehouse.transaction(con):
        warehouse.replace_partition(con, "quality.t", frame(D1, 3), D1)
    with pytest.raises(RuntimeError), warehouse.transaction(con):
        warehouse.replace_partition(con, "quality.t", frame(D1, 1), D1)
        raise RuntimeError("crash after the delete")
    assert warehouse.read_partition(con, "quality.t", D1).height == 3


def test_new_columns_are_added_and_old_rows_keep_null(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    with warehouse.transaction(con):
        warehouse.replace_partition(con, "quality.t", frame(D1, 2), D1)
        warehouse.replace_partition(con, "quality.t", frame(D2, 2, extra=True), D2)
    out = warehouse.read_table(con, "quality.t").sort("trade_date")
    assert out["y"].to_list() == [None, None, 1.5, 1.5]


def test_read_only_connection_to_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="eqs run"):
        warehouse.connect(tmp_path / "none.duckdb", read_only=True)


def test_a_motherduck_warehouse_is_handed_to_duckdb_as_it_is(monkeypatch, tmp_path) -> None:
    """`md:<database>` is no local file: neither created as a folder nor refused as missing
    (it used to fail every read-only open with "no warehouse at md:eqs")."""
    import duckdb

    opened, real_connect = [], duckdb.connect

    def fake_connect(database: str, read_only: bool = False):
        opened.append((database, read_only))
        return real_connect(":memory:")

    monkeypatch.setattr(warehouse.duckdb, "connect", fake_connect)
    monkeypatch.chdir(tmp_path)
    for read_only in (True, False):
        con = warehouse.connect("md:eqs", read_only=read_only)
        assert con.execute("select current_setting('TimeZone')").fetchall() == [("UTC",)]
        con.close()
    assert opened == [("md:eqs", True), ("md:eqs", False)]
    assert list(tmp_path.iterdir()) == []


def test_a_partition_read_of_a_symbol_range(tmp_path: Path) -> None:
    """`read_partition(..., query=...)`: a symbol range's rows of one date, those without a
    symbol only with the date's first range."""
    con = warehouse.connect(tmp_path / "w.duckdb")
    rows = pl.DataFrame({"symbol": ["A", "B", "C", None, "D"], "x": [1, 2, 3, 4, 5]})
    with warehouse.transaction(con):
        for day in (D1, D2):
            warehouse.replace_partition(con, "quality.t", rows.with_columns(trade_date=day), day)

    def read(first: str, last: str, first_range: bool) -> list[int]:
        bounds = {"first": first, "last": last, "first_range": first_range}
        frame = warehouse.read_partition(
            con, "quality.t", D1, None, ["x"], query="select_partition_symbol_range", params=bounds
        )
        assert frame.columns == ["x"]
        return sorted(frame["x"])

    assert read("A", "B", True) == [1, 2, 4]
    assert read("C", "D", False) == [3, 5]
    assert read("B", "B", False) == [2]


def _hold(path: Path, seconds: float, marker: Path | None = None) -> subprocess.Popen[str]:
    """Another process that opens the warehouse for writing, says so, and holds it; before it
    lets go, it creates `marker`."""
    code = (
        "import duckdb, pathlib, sys, time\n"
        f"con = duckdb.connect({str(path)!r})\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
        + (f"pathlib.Path({str(marker)!r}).touch()\n" if marker else "")
        + "con.close()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.integration
def test_connect_waits_for_another_process_to_release_the_file(tmp_path: Path) -> None:
    path, letting_go = tmp_path / "w.duckdb", tmp_path / "letting-go"
    warehouse.connect(path).close()
    with _hold(path, 1.0, letting_go) as holder:
        con = warehouse.connect(path, lock_wait_s=30.0)
        # Opened only once the holder let go: it marks that before it closes the file.
        assert letting_go.exists()
        con.close()
        holder.wait()


@pytest.mark.integration
def test_connect_names_the_process_that_holds_the_file_too_long(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse.connect(path).close()
    with _hold(path, 30.0) as holder:
        try:
            with pytest.raises(warehouse.WarehouseBusy, match=rf"{path}.*PID {holder.pid}"):
                warehouse.connect(path, read_only=True, lock_wait_s=0.3)
        finally:
            holder.kill()
