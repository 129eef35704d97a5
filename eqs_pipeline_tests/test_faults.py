"""Faults of the storage under the pipeline: a full disk, a folder that cannot be written, a
damaged warehouse file, a landed file that disappears mid-run, an exports path that is a file.

Each must stop with an error that names the path, and leave what a previous run wrote as it
was: the lake partitions, the warehouse rows and the exports, with no half-written file where a
reader looks.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from eqs_pipeline.cli.main import main
from eqs_pipeline.ingest import LandingError, count_landed_rows, read_table
from eqs_pipeline.ingest import layout as layout_module
from eqs_pipeline.ingest import read as read_module
from eqs_pipeline.runtime.runner import RunFailed, run_pipeline
from eqs_pipeline.storage import lake, warehouse
from eqs_pipeline.storage.exports import EXPORT_FILE, ExportError, write_events_jsonl

D1 = date(2026, 1, 5)
TABLE = "quality.t"


def _frame(day: date, n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame({"trade_date": [day] * n, "x": list(range(start, start + n))})


def _one_line(output: str) -> str:
    """CLI output without the line breaks and indents rich adds to fit the terminal."""
    return "".join(output.split())


# A full disk ---------------------------------------------------------------------------------

_FULL = OSError(errno.ENOSPC, "No space left on device")
# What Polars' Parquet writer raises when the file system fails under it.
_FULL_POLARS = pl.exceptions.ComputeError(
    "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
)


def _fills_half_then(cause: BaseException):
    """A writer that leaves half a file where it was told to write, then fails with `cause`."""

    def write(self, file, *args, **kwargs):
        Path(file).write_bytes(b"PAR1 half a file")
        raise cause

    return write


@pytest.mark.parametrize("cause", [_FULL, _FULL_POLARS], ids=["oserror", "polars"])
def test_a_full_disk_while_writing_the_lake_keeps_the_previous_partition(
    tmp_path, monkeypatch, cause
) -> None:
    path = Path(lake.write(tmp_path, TABLE, _frame(D1, 3), D1))
    before = path.read_bytes()
    monkeypatch.setattr(pl.DataFrame, "write_parquet", _fills_half_then(cause))
    with pytest.raises(lake.LakeWriteError, match="No space left on device") as failed:
        lake.write(tmp_path, TABLE, _frame(D1, 5), D1)
    assert str(path) in str(failed.value) and "quality.t" in str(failed.value)
    assert isinstance(failed.value, OSError)
    if isinstance(cause, OSError):
        assert failed.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before  # the previous partition, whole
    assert os.listdir(path.parent) == [lake.PART]  # no temporary file left beside it
    assert lake.read(tmp_path, TABLE, D1)["x"].to_list() == [0, 1, 2]


class _DiskFullAfterInserts:
    """A warehouse connection whose disk fills up after `inserts` insert statements, as DuckDB
    reports it (an IOException naming the file)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, inserts: int) -> None:
        self._con, self._path, self._inserts = con, path, inserts

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def execute(self, query: str, *args):
        if query.lstrip().lower().startswith("insert"):
            if self._inserts == 0:
                raise duckdb.IOException(
                    f'IO Error: Could not write file "{self._path}.wal": No space left on device'
                )
            self._inserts -= 1
        return self._con.execute(query, *args)


def test_a_full_disk_while_loading_the_warehouse_rolls_the_whole_load_back(tmp_path) -> None:
    """The load replaces a date's rows of every table in one transaction: the disk filling up
    at the second table leaves the first table's previous rows too."""
    tables = (TABLE, "quality.u")
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    first = {t: lake.write(tmp_path / "v1", t, _frame(D1, 3), D1) for t in tables}
    warehouse.load_partitions(con, first, D1)
    second = {t: lake.write(tmp_path / "v2", t, _frame(D1, 5, start=10), D1) for t in tables}
    full = _DiskFullAfterInserts(con, db, inserts=1)
    with pytest.raises(duckdb.IOException, match=rf"{db.name}\.wal.*No space left"):
        warehouse.load_partitions(full, second, D1)
    for table in tables:
        assert sorted(warehouse.read_partition(con, table, D1)["x"]) == [0, 1, 2], table
    warehouse.load_partitions(con, second, D1)  # the connection is usable once space is back
    assert sorted(warehouse.read_partition(con, "quality.u", D1)["x"]) == [10, 11, 12, 13, 14]


_REAL_LIMIT = textwrap.dedent(
    """
    import json, resource, signal, sys
    from datetime import date
    from pathlib import Path

    import numpy as np
    import polars as pl

    from eqs_pipeline.storage import lake, warehouse
    from eqs_pipeline.storage.exports import write_events_jsonl

    root, day = Path(sys.argv[1]), date(2026, 1, 5)
    rows = np.random.default_rng(1).integers(-(2**62), 2**62, 1_000_000)  # incompressible
    big = pl.DataFrame({"trade_date": [day] * len(rows), "x": rows})
    big_file = lake.write(root / "big", "quality.t", big, day)
    events = pl.DataFrame({"event_id": ["e"] * 200_000, "payload": ['{"v":1}'] * 200_000})
    small = [p.stat().st_size for p in root.rglob("*") if p.is_file() and "big" not in p.parts]
    limit = 2 * max(small)  # room for the small files, not for 8 MB more
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    con = warehouse.connect(root / "w.duckdb")
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    errors = {}
    for name, write in {
        "lake": lambda: lake.write(root / "lake", "quality.t", big, day),
        "warehouse": lambda: warehouse.load_partitions(con, {"quality.t": big_file}, day),
        "exports": lambda: write_events_jsonl(events, root / "exports", "date=2026-01-05"),
    }.items():
        try:
            write()
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    con.close()
    print(json.dumps(errors))
    """
)


@pytest.mark.integration
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE behaves this way on Linux")
def test_real_write_failures_leave_lake_warehouse_and_exports_as_they_were(tmp_path) -> None:
    """The file size limit of a child process makes every real write past it fail (EFBIG, as a
    full disk makes it fail with ENOSPC), through Polars' and DuckDB's own writers."""
    partition = Path(lake.write(tmp_path / "lake", TABLE, _frame(D1, 3), D1))
    con = warehouse.connect(tmp_path / "w.duckdb")
    with warehouse.transaction(con):
        warehouse.replace_partition(con, TABLE, _frame(D1, 3), D1)
    con.close()
    events = pl.DataFrame({"event_id": ["a"], "payload": ['{"v":0}']})
    export = Path(write_events_jsonl(events, tmp_path / "exports", "date=2026-01-05"))
    before = {p: p.read_bytes() for p in (partition, export)}

    child = subprocess.run(
        [sys.executable, "-c", _REAL_LIMIT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    errors = json.loads(child.stdout.strip().splitlines()[-1])
    assert errors.keys() == {"lake", "warehouse", "exports"}
    assert errors["lake"].startswith("LakeWriteError") and str(partition) in errors["lake"]
    assert "File too large" in errors["lake"]
    assert errors["exports"].startswith("ExportError") and str(export) in errors["exports"]
    assert "w.duckdb" in errors["warehouse"]
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(os.listdir(partition.parent)) == [lake.PART]
    assert sorted(os.listdir(export.parent)) == [EXPORT_FILE]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute(f"select list_sort(list(x)) from {TABLE}").fetchall() == [([0, 1, 2],)]


# A folder that cannot be written -------------------------------------------------------------


def test_a_warehouse_under_a_regular_file_is_refused_naming_the_file(tmp_path) -> None:
    """A path under a regular file cannot be created, as root too (chmod does not stop root)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the warehouse folder should be")
    for path in (blocker / "w.duckdb", blocker / "deeper" / "w.duckdb"):
        with pytest.raises(warehouse.WarehouseUnwritable, match="cannot create the warehouse") as e:
            warehouse.connect(path)
        assert str(path) in str(e.value) and f"{blocker} is a file, not a folder" in str(e.value)
    assert blocker.read_text() == "a file where the warehouse folder should be"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores chmod")
def test_a_warehouse_in_a_read_only_folder_is_refused_naming_it(tmp_path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(warehouse.WarehouseUnwritable, match="Permission denied") as e:
            warehouse.connect(folder / "w.duckdb")
        assert str(folder / "w.duckdb") in str(e.value)
    finally:
        folder.chmod(0o700)


def test_a_lake_under_a_regular_file_is_refused_naming_the_file(tmp_path) -> None:
    blocker = tmp_path / "lake"
    blocker.write_text("")
    with pytest.raises(
        lake.LakeWriteError, match=re.escape(f"{blocker} is a file, not a folder")
    ) as e:
        lake.write(blocker, TABLE, _frame(D1, 1), D1)
    assert lake.partition_path(blocker, TABLE, D1) in str(e.value)


# A damaged warehouse file --------------------------------------------------------------------

GARBAGE = b"this is not a DuckDB database\x00\xff" * 4096


@pytest.mark.parametrize("read_only", [True, False])
def test_a_garbage_warehouse_file_is_named_and_left_alone(tmp_path, read_only) -> None:
    db = tmp_path / "w.duckdb"
    db.write_bytes(GARBAGE)
    with pytest.raises(warehouse.WarehouseCorrupt, match="is damaged or not a DuckDB") as e:
        warehouse.connect(db, read_only=read_only)
    assert str(db) in str(e.value) and "eqs run" in str(e.value)
    assert db.read_bytes() == GARBAGE  # not overwritten by a fresh database


def _damage_the_blocks_of(db: Path, table: str) -> None:
    """Overwrite part of every block of `table`'s rows: the file still opens (its catalog is
    elsewhere), and the damage shows when a query reads the rows."""
    with duckdb.connect(str(db), read_only=True) as con:
        blocks = con.execute(
            "select distinct block_id from pragma_storage_info(?) where block_id >= 0", [table]
        ).fetchall()
        block_size = con.execute("select block_size from pragma_database_size()").fetchall()[0][0]
    assert blocks, f"{table} has no data block"
    headers = 3 * 4096  # the main header and the two database headers
    with db.open("r+b") as f:
        for (block,) in blocks:
            f.seek(headers + block * block_size + 64)
            f.write(b"\x5a" * 256)


def test_damage_found_by_a_query_is_named_with_the_file(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    con.execute(f"create table {TABLE} as select range as x from range(100000)")
    con.close()
    _damage_the_blocks_of(db, TABLE)
    con = warehouse.connect(db, read_only=True)  # opens: the damaged block is not read yet
    try:
        with (
            pytest.raises(warehouse.WarehouseCorrupt, match="checksum") as e,
            warehouse.naming_damage(db),
        ):
            con.execute(f"select sum(x) from {TABLE}").fetchall()
        assert str(db) in str(e.value)
        # Anything else passes as it is.
        with pytest.raises(duckdb.CatalogException), warehouse.naming_damage(db):
            con.execute("select * from no_such_table").fetchall()
    finally:
        con.close()


def test_cli_commands_on_a_damaged_warehouse_fail_naming_it(built_warehouse, tmp_path) -> None:
    """`eqs run`, `eqs summary` and `eqs venues` on a file that is not a database: an error
    naming the file, quoted as it is (a folder named like rich markup), and the file left as it
    was; a damaged block of a table `eqs summary` reads: the same."""
    landing, built, _ = built_warehouse
    db = tmp_path / "[red]wh" / "warehouse.duckdb"
    db.parent.mkdir()
    db.write_bytes(GARBAGE)
    runner = CliRunner()
    for args in (
        ["run", "--landing", str(landing), "--warehouse", str(db)],
        ["summary", "--warehouse", str(db)],
        ["venues", "--warehouse", str(db)],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        said = _one_line(result.output)
        assert "error:" in said and str(db) in said and "damagedornotaDuckDBdatabase" in said, said
    assert db.read_bytes() == GARBAGE

    copy = tmp_path / "copy.duckdb"
    shutil.copy(built, copy)
    _damage_the_blocks_of(copy, "quality.order_quality")
    result = runner.invoke(main, ["summary", "--warehouse", str(copy)])
    assert result.exit_code == 2, result.output
    said = _one_line(result.output)
    assert str(copy) in said and "checksum" in said and "Traceback" not in said


# A landed file that disappears mid-run -------------------------------------------------------


def _vanishing(listing, *, table: str):
    """`landed_files` that deletes `table`'s files right after listing them."""

    def listed(landing, name, trade_date):
        files = listing(landing, name, trade_date)
        if name == table:
            for file in files:
                Path(file.location).unlink()
        return files

    return listed


def test_a_landed_file_gone_before_it_is_read_is_named(tmp_path, monkeypatch) -> None:
    day = date(2024, 1, 2)
    folder = tmp_path / "quotes" / f"date={day}"
    folder.mkdir(parents=True)
    pl.DataFrame({"symbol": ["AAPL"], "ts": ["2024-01-02T14:30:00Z"]}).write_csv(folder / "q.csv")
    monkeypatch.setattr(
        read_module, "landed_files", _vanishing(read_module.landed_files, table="quotes")
    )
    with pytest.raises(LandingError, match=r"^quotes/date=2024-01-02/q\.csv: listed, then gone"):
        read_table(tmp_path, "quotes", day)
    pl.DataFrame({"symbol": ["AAPL"]}).write_csv(folder / "q.csv")
    monkeypatch.setattr(
        layout_module, "landed_files", _vanishing(layout_module.landed_files, table="quotes")
    )
    with pytest.raises(LandingError, match=r"q\.csv: listed, then gone"):
        count_landed_rows(tmp_path, "quotes", day)


def _previous_run(root: Path) -> dict[str, object]:
    """What a run left that a failed run must not touch: the dated lake partitions and the
    exports, byte for byte, and the dated rows of every daily warehouse table."""
    from eqs_pipeline.defs.warehouse.assets import DAILY_TABLES

    files = {
        str(p.relative_to(root)): p.read_bytes()
        for folder in ("lake", "exports")
        for p in (root / folder).rglob("*")
        if p.is_file() and ("trade_date=" in str(p) or folder == "exports")
    }
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        rows = {
            t: con.execute(
                f"select * from {t} where trade_date is not null order by all"
            ).fetchall()
            for t in DAILY_TABLES
        }
    return {"files": files, "rows": rows}


def test_a_landed_file_gone_mid_run_fails_the_date_and_keeps_the_previous_run(
    built_warehouse, tmp_path, monkeypatch
) -> None:
    _, built, report = built_warehouse
    root = tmp_path / "run"
    shutil.copytree(built.parent, root, ignore=shutil.ignore_patterns("*.wal"))
    before = _previous_run(root)
    assert before["files"] and before["rows"]["staging.executions"]
    monkeypatch.setattr(
        read_module, "landed_files", _vanishing(read_module.landed_files, table="executions")
    )
    day = report.trade_dates[0]
    with pytest.raises(RunFailed, match=rf"trade dates? {day}.* failed") as failed:
        run_pipeline(root / "landing", root / "warehouse.duckdb", force=True)
    assert f"executions/date={day}/" in str(failed.value)
    assert "listed, then gone" in str(failed.value)
    assert _previous_run(root) == before


# An exports path that cannot be written ------------------------------------------------------

EVENTS = pl.DataFrame({"event_id": ["e1"], "payload": ['{"v":1}']})


def test_a_full_disk_while_exporting_keeps_the_previous_export(tmp_path, monkeypatch) -> None:
    export = Path(write_events_jsonl(EVENTS, tmp_path, "date=2026-01-05"))
    before = export.read_bytes()
    monkeypatch.setattr(pl.DataFrame, "write_csv", _fills_half_then(_FULL))
    with pytest.raises(ExportError, match="No space left on device") as failed:
        write_events_jsonl(EVENTS.with_columns(event_id=pl.lit("e2")), tmp_path, "date=2026-01-05")
    assert str(export) in str(failed.value) and failed.value.errno == errno.ENOSPC
    assert export.read_bytes() == before
    assert os.listdir(export.parent) == [EXPORT_FILE]


@pytest.mark.parametrize("under", [(), ("execution_quality_events", "date=2026-01-05")])
def test_an_exports_root_that_is_a_file_is_refused_naming_it(tmp_path, under) -> None:
    root = tmp_path / "exports"
    root.write_text("previous contents")
    with pytest.raises(ExportError, match=re.escape(f"{root} is a file, not a folder")) as failed:
        write_events_jsonl(EVENTS, root, *under)
    assert str(root.joinpath(*under, EXPORT_FILE)) in str(failed.value)
    assert root.read_text() == "previous contents"


# Exports stay JSON whatever the text ---------------------------------------------------------

HOSTILE = [
    "plain",
    "NUL \x00 inside",
    "controls \x01\x07\x08\x0b\x0c\x1b[31m\x1f\x7f",
    'quote " backslash \\ slash /',
    "line\nfeed\rreturn\ttab",
    "separators \u0085 \u2028 \u2029",
    "non-BMP 🙂 and é and \ufeff",
    "x" * 1_000_000,
    "",
    None,
]


def test_exported_events_are_one_json_object_per_line_for_any_text(tmp_path) -> None:
    frame = pl.DataFrame(
        {
            "event_id": HOSTILE,
            "venue": list(reversed(HOSTILE)),
            "score": [float("nan"), float("inf"), -float("inf"), *range(len(HOSTILE) - 3)],
        }
    )
    payload = pl.struct("venue", "score").struct.json_encode()
    events = frame.select("event_id", payload.alias("payload"))
    events = pl.concat([events, pl.DataFrame({"event_id": ["no payload"], "payload": [None]})])
    text = Path(write_events_jsonl(events, tmp_path, "w")).read_text(encoding="utf-8")
    lines = text.splitlines()  # Python splits on U+0085, U+2028 and U+2029 too
    assert len(lines) == events.height and text.endswith("\n")

    def no_constants(name: str):
        raise AssertionError(f"{name} is not JSON")

    decoded = [json.loads(line, parse_constant=no_constants) for line in lines]
    assert [d["event_id"] for d in decoded] == [*HOSTILE, "no payload"]
    assert [d["payload"]["venue"] for d in decoded[:-1]] == list(reversed(HOSTILE))
    assert [d["payload"]["score"] for d in decoded[:3]] == [None, None, None]
    assert decoded[-1]["payload"] is None
    # Polars strings are UTF-8: a lone surrogate cannot reach the export at all.
    with pytest.raises(UnicodeEncodeError):
        pl.Series(["lone \ud800 surrogate"])
