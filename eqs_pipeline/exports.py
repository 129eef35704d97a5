"""JSON Lines exports of event tables, for downstream consumers.

Each line is the event's envelope columns with its JSON `payload` nested as an object. Files are
written to a temporary name and renamed, so a consumer never reads a half-written export, and a
re-run of the same partition or window replaces its file.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl


def write_events_jsonl(frame: pl.DataFrame, folder: Path) -> Path:
    """Write `frame` (envelope columns + `payload` JSON text) to `<folder>/events.jsonl`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "events.jsonl"
    tmp = target.with_suffix(".jsonl.tmp")
    envelope = pl.struct(pl.exclude("payload")).struct.json_encode().str.strip_suffix("}")
    lines = frame.select(pl.concat_str(envelope, pl.lit(',"payload":'), "payload", pl.lit("}")))
    tmp.write_text("".join(f"{line}\n" for line in lines.to_series()))
    tmp.replace(target)
    return target
