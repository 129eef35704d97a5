"""Model artifacts as named files in a folder or under an object-store prefix.

A trained model is written once under its content-derived name (`<root>/<version>.npz`) and
never rewritten: the same model always lands at the same place, and the registry
(`model.model_versions`) records where. Local writes go through a temporary file and an atomic
rename, so a reader never sees half a file. Bytes only: what they mean is the cost model's
business (`eqs_pipeline.costmodel.artifact`).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from eqs_pipeline.storage.lake import is_remote, join, replace_local

SUFFIX = ".npz"


def location(root: str | Path, name: str) -> str:
    """Where the artifact called `name` lives under `root`."""
    return join(root, f"{name}{SUFFIX}")


def write(root: str | Path, name: str, data: bytes) -> str:
    """Store `data` as the artifact `name`; returns its location."""
    where = location(root, name)
    if is_remote(where):
        fs, path = pafs.FileSystem.from_uri(where)
        with fs.open_output_stream(path) as out:
            out.write(data)
        return where
    replace_local(Path(where), lambda tmp: tmp.write_bytes(data))
    return where


def read(where: str) -> bytes:
    """The artifact stored at `where`; FileNotFoundError when there is none."""
    if is_remote(where):
        fs, path = pafs.FileSystem.from_uri(where)
        with fs.open_input_stream(path) as f:
            return f.read()
    return Path(where).read_bytes()
