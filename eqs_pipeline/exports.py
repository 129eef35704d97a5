"""JSON Lines exports of event tables, for downstream consumers.

Each line is the event's envelope columns with its JSON `payload` nested as an object. The
exports' root is a folder or an object-store URL (`s3://bucket/eqs/exports`; credentials and
endpoint from the environment, as for the lake: `eqs_pipeline.lake`). A local file is written to
a temporary name and renamed, an object in one PUT, so a consumer never reads a half-written
export, and a re-run of the same partition or window replaces its file.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from eqs_pipeline.lake import is_remote, join

EXPORT_FILE = "events.jsonl"


def write_events_jsonl(frame: pl.DataFrame, root: str | Path, *parts: str) -> str:
    """Write `frame` (envelope columns + `payload` JSON text) to `<root>/<parts>/events.jsonl`;
    returns that path or URL."""
    target = join(root, *parts, EXPORT_FILE)
    envelope = pl.struct(pl.exclude("payload")).struct.json_encode().str.strip_suffix("}")
    lines = frame.select(pl.concat_str(envelope, pl.lit(',"payload":'), "payload", pl.lit("}")))
    if is_remote(target):
        _write_lines(lines, target)
        return target
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    _write_lines(lines, tmp)
    tmp.replace(path)
    return target


def _write_lines(lines: pl.DataFrame, target: str | Path) -> None:
    """One complete JSON object per row, written verbatim: no header, no quoting."""
    lines.write_csv(target, include_header=False, quote_style="never")
