"""What a trade date was staged from, as one fingerprint: unchanged inputs, unchanged outputs.

A trade date's outputs follow from its landed files, the instrument reference data, the
settings and the code. `inputs_fingerprint` hashes all four: each landed file's table, name,
size and modification time (as the landing sensor compares them), the same for the
instruments files, the settings as JSON, and `code_version` (a hash of the package's Python
and SQL files). Staging records it in `staging.ingest_log` (`inputs_fingerprint`), and
`eqs run` skips a date whose recorded fingerprint equals the current one (`--force` stages it
again). The window assets record theirs (`window_fingerprint`) in `venue.venue_scorecard`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from eqs_pipeline.core.contract import DATED_TABLES
from eqs_pipeline.ingest.layout import DATE_PREFIX, is_hidden
from eqs_pipeline.storage import store
from eqs_pipeline.storage.lake import join
from eqs_pipeline.storage.store import Entry

INSTRUMENTS = "instruments"

LandedFile = tuple[str, Entry]
"""A landed file: its table and its entry (name, size, modification time)."""


def landed_files(landing: str | Path) -> dict[str, list[LandedFile]]:
    """The landed files per trade date (`YYYY-MM-DD`, over every dated table; an empty date
    folder counts, with no files) and under `instruments`: one listing of the whole landing
    (on object storage one paginated LIST of the prefix)."""
    found: defaultdict[str, list[LandedFile]] = defaultdict(list)
    for entry in store.walk(landing):
        parts = entry.name.split("/")
        if parts[0] in DATED_TABLES and len(parts) in (2, 3) and parts[1].startswith(DATE_PREFIX):
            files = found[parts[1].removeprefix(DATE_PREFIX)]
            if len(parts) == 3 and not entry.is_dir:  # as `date_files` lists them
                files.append((parts[0], entry))
        elif parts[0] == INSTRUMENTS and len(parts) == 2 and not is_hidden(parts[1]):
            found[INSTRUMENTS].append((parts[0], entry))
    return found


def date_files(landing: str | Path, trade_date: date | None) -> dict[str, list[LandedFile]]:
    """`landed_files` of one trade date (None: none) and the instruments: a listing of each of
    their folders only, not of the whole landing."""
    found: dict[str, list[LandedFile]] = {INSTRUMENTS: []}
    if trade_date is not None:
        key = trade_date.isoformat()
        found[key] = []
        for table in DATED_TABLES:
            folder = join(str(landing), table, f"{DATE_PREFIX}{key}")
            found[key] += [(table, e) for e in store.list_folder(folder) if not e.is_dir]
    found[INSTRUMENTS] = [
        (INSTRUMENTS, e)
        for e in store.list_folder(join(str(landing), INSTRUMENTS))
        if not e.is_dir and not is_hidden(e.name.rsplit("/", 1)[-1])
    ]
    return found


def files_bytes(files: Iterable[LandedFile]) -> int:
    """The files' size in bytes, together (what decides which dates a run takes together)."""
    return sum(f.size or 0 for _, f in files)


def files_fingerprint(files: Iterable[LandedFile]) -> str:
    """The files' (table/name, size, mtime), sorted, as JSON (the landing sensor's cursor holds
    these)."""
    return json.dumps(
        sorted((f"{table}/{f.name.rsplit('/', 1)[-1]}", f.size, f.mtime_ns) for table, f in files)
    )


def inputs_fingerprint(
    files: Sequence[LandedFile], instruments: Sequence[LandedFile], settings: str
) -> str:
    """The fingerprint of a trade date's inputs: its landed `files`, the `instruments` files,
    the `settings` (JSON) and the code (`code_version`), as a SHA-256 hex digest."""
    parts = [files_fingerprint(files), files_fingerprint(instruments), settings, code_version()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def window_fingerprint(dates: dict[date, str], settings: str) -> str:
    """The fingerprint of a window's inputs: each trade date's inputs fingerprint, the window's
    `settings` (JSON) and the code."""
    parts = [json.dumps(sorted((d.isoformat(), f) for d, f in dates.items())), settings]
    return hashlib.sha256("\n".join([*parts, code_version()]).encode()).hexdigest()


@functools.cache
def code_version() -> str:
    """A hash of the package's Python files and SQL statements: a change to the code that
    computes the tables changes every fingerprint (a few milliseconds, once per process)."""
    package = Path(__file__).parents[1]
    sql = package / "sql" if (package / "sql").is_dir() else package.parent / "sql"
    digest = hashlib.sha256()
    for path in sorted([*package.rglob("*.py"), *sql.glob("*.sql")]):
        digest.update(str(path.relative_to(package.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
