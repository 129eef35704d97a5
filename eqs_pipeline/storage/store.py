"""The landing directory as a local folder or an object-store prefix, listed and read alike.

`landing` is a folder or a URL (`s3://bucket/eqs/landing`, `gs://...`: anything
`pyarrow.fs.FileSystem.from_uri` takes). Listing goes through pyarrow's file systems, so a
folder on object storage is a key prefix (one paginated LIST per folder, or per landing for
`walk`), and a file's size and modification time are the object's. A landed file is read whole
in any case: a local one in place, an object with one GET (`source`).

Credentials and the endpoint come from the environment, as for the lake (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for an S3-compatible store such as
MinIO). Errors of the store itself (a missing bucket, a refused credential) are `OSError`s that
name the bucket or key; `eqs_pipeline.ingest.layout` turns them into `LandingError`s naming the
landing location.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs

from eqs_pipeline.storage.lake import is_remote, join

_LOCAL = pafs.LocalFileSystem()


@dataclass(frozen=True, slots=True)
class Entry:
    """One file or folder of the landing: its name, where it is, and (files) size and mtime."""

    name: str
    location: str  # the folder's location joined with `name`: a path or a URL
    is_dir: bool
    size: int | None
    mtime_ns: int | None

    @property
    def suffix(self) -> str:
        """The file name's extension, lower case, with its dot ('' when there is none)."""
        return PurePosixPath(self.name).suffix.lower()


def _filesystem(location: str | Path) -> tuple[pafs.FileSystem, str]:
    text = str(location)
    if is_remote(text):
        return pafs.FileSystem.from_uri(text)
    return _LOCAL, text


def _entry(folder: str, info: pafs.FileInfo, name: str) -> Entry:
    is_dir = info.type == pafs.FileType.Directory
    mtime = info.mtime_ns
    return Entry(name, join(folder, name), is_dir, None if is_dir else info.size, mtime)


def is_dir(location: str | Path) -> bool:
    """Whether `location` is a folder (on object storage: a prefix with objects under it)."""
    fs, path = _filesystem(location)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def list_folder(location: str | Path) -> list[Entry]:
    """The entries directly in the folder `location`, sorted by name; [] when it does not exist."""
    fs, path = _filesystem(location)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    folder = str(location).rstrip("/")
    return sorted((_entry(folder, i, i.base_name) for i in infos), key=lambda e: e.name)


def walk(location: str | Path) -> list[Entry]:
    """Every file and folder under `location`, at any depth, sorted by path; [] when missing.

    An entry's `name` is its path relative to `location` (`fills/date=2024-01-02/a.parquet`).
    On object storage this is one paginated listing of the prefix, not one per folder.
    """
    fs, path = _filesystem(location)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    folder = str(location).rstrip("/")
    prefix = path.rstrip("/") + "/"
    entries = (_entry(folder, i, i.path.removeprefix(prefix)) for i in infos)
    return sorted(entries, key=lambda e: e.name)


def source(location: str | Path) -> str | bytes:
    """What a Polars reader takes for the file: its path when local, its bytes (one GET) when
    remote."""
    if not is_remote(location):
        return str(location)
    fs, path = _filesystem(location)
    with fs.open_input_stream(path) as f:
        return f.read()


def readable(source: str | bytes) -> str | io.BytesIO:
    """What `source` returned, as a Polars reader takes it: a path as it is, bytes as a fresh
    stream (one per read, so the same bytes can be read several times)."""
    return io.BytesIO(source) if isinstance(source, bytes) else source


def open_binary(location: str | Path) -> BinaryIO:
    """The file as a binary stream to iterate by lines: the file itself when local, its bytes
    (one GET) when remote."""
    if not is_remote(location):
        return Path(location).open("rb")
    return io.BytesIO(source(location))


def open_input(location: str | Path) -> pa.NativeFile:
    """The file opened for random access (a Parquet footer reads as one ranged GET remotely)."""
    fs, path = _filesystem(location)
    return fs.open_input_file(path)


def relative(location: str, root: str | Path) -> str:
    """`location` relative to `root`, with '/' separators (a landed file's `source_file`)."""
    base = str(root).rstrip("/") + "/"
    if not location.startswith(base):
        raise ValueError(f"{location} is not under {root}")
    return location.removeprefix(base)
