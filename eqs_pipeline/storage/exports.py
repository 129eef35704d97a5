"""JSON Lines exports of event tables, for downstream consumers.

Each line is the event's envelope columns with its JSON `payload` nested as an object. The
exports' root is a folder or an object-store URL (`s3://bucket/eqs/exports`; credentials and
endpoint from the environment, as for the lake: `eqs_pipeline.storage.lake`). A local file is
written to a temporary name and renamed, an object in one PUT, so a consumer never reads a
half-written export, and a re-run of the same partition or window replaces its file. A write
that fails (a full disk, an exports root that is a file) raises `ExportError` naming the export;
the previous file stays as it was and the temporary one is removed.

Every line is one JSON object whatever text the events carry: the envelope goes through Polars'
JSON encoder (quotes, backslashes and control characters NUL included are escaped; a Polars
string is always UTF-8, so a lone surrogate cannot reach it), a null payload is written as
`null`, and the characters that are valid raw inside a JSON string but end a line for some
readers (U+0085, U+2028, U+2029: Python's `str.splitlines`, JavaScript before ES2019) are
written as `\\uXXXX` escapes.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from eqs_pipeline.storage.lake import is_remote, join, replace_local, write_failed

EXPORT_FILE = "events.jsonl"

# Valid raw in a JSON string, a line break to some readers: written as escapes.
_LINE_BREAKS = ("\u0085", "\u2028", "\u2029")
# What a failed write raises (see `eqs_pipeline.storage.lake`).
_WRITE_ERRORS = (OSError, pl.exceptions.ComputeError)


class ExportError(OSError):
    """An export could not be written; its previous file, if any, is unchanged."""


def write_events_jsonl(frame: pl.DataFrame, root: str | Path, *parts: str) -> str:
    """Write `frame` (envelope columns + `payload` JSON text) to `<root>/<parts>/events.jsonl`;
    returns that path or URL."""
    target = join(root, *parts, EXPORT_FILE)
    lines = event_lines(frame)
    try:
        if is_remote(target):
            _write_lines(lines, target)
        else:
            replace_local(Path(target), lambda tmp: _write_lines(lines, tmp))
    except _WRITE_ERRORS as exc:
        raise write_failed(ExportError, "the export", target, exc) from exc
    return target


def event_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """One column, `line`: each event as one line of JSON (see the module's docstring)."""
    # A JSON payload holds a raw line break only as white space between its tokens (never
    # inside a string), so a payload written over several lines is joined without change.
    payload = pl.col("payload").fill_null("null").str.replace_all(r"[\r\n]", " ")
    envelope = [c for c in frame.columns if c != "payload"]
    if envelope:
        head = pl.struct(envelope).struct.json_encode().str.strip_suffix("}")
        line = pl.concat_str(head, pl.lit(',"payload":'), payload, pl.lit("}"))
    else:
        line = pl.concat_str(pl.lit('{"payload":'), payload, pl.lit("}"))
    for char in _LINE_BREAKS:
        line = line.str.replace_all(char, f"\\u{ord(char):04x}", literal=True)
    return frame.select(line.alias("line"))


def _write_lines(lines: pl.DataFrame, target: str | Path) -> None:
    """One complete JSON object per row, written verbatim: no header, no quoting."""
    lines.write_csv(target, include_header=False, quote_style="never")
