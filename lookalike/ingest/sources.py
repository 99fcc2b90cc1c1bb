"""Where images come from: a folder (recursive) or a CSV/JSONL manifest -> `Item`s, streamed.

Manifest columns / keys: `path` or `url` (one is required), optional `id`, `category`,
`tags` (CSV: separated by `;` or `|`; JSONL: a list or such a string). Relative paths are
relative to the manifest's folder.

An `Item` says where an image is, never holds its bytes: `read` fetches them when the image's
turn comes, so memory is bounded by the images in flight, not by the catalogue. Folders and
manifests are streamed too (a folder is walked one directory at a time, in sorted order).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lookalike.errors import SourceUnreadable

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".jfif", ".heic", ".avif"}


@dataclass
class Item:
    source: str  # path or URL
    id: str | None = None  # given id; else sha256 of the bytes
    category: str | None = None
    tags: list[str] = field(default_factory=list)

    def doc_id(self, data: bytes) -> str:
        """The given id, else the SHA-256 of the image's bytes."""
        return self.id or hashlib.sha256(data).hexdigest()


def from_folder(root: Path) -> Iterator[Item]:
    """Image files under `root` (by suffix) in sorted order; a first-level sub-folder name becomes
    the category."""
    root = Path(root)
    if not root.is_dir():
        raise SourceUnreadable(f"{root} is not a folder")
    for here, folders, files in os.walk(root):
        folders.sort()
        for name in sorted(files):
            path = Path(here) / name
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                parts = path.relative_to(root).parts
                yield Item(source=str(path), category=parts[0] if len(parts) > 1 else None)


def from_manifest(manifest: Path) -> Iterator[Item]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise SourceUnreadable(f"no manifest at {manifest}")
    with manifest.open(newline="") as handle:
        rows: Iterable[dict]
        if manifest.suffix.lower() in (".jsonl", ".ndjson"):
            rows = (json.loads(line) for line in handle if line.strip())
        else:
            rows = csv.DictReader(handle)
        for number, row in enumerate(rows, start=1):
            location = row.get("url") or row.get("path")
            if not location:
                raise SourceUnreadable(f"{manifest}:{number}: needs a 'path' or 'url'")
            if not str(location).startswith(("http://", "https://")) and not Path(location).is_absolute():
                location = str((manifest.parent / location).resolve())
            yield Item(source=str(location), id=row.get("id") or None, category=row.get("category") or None,
                       tags=_tags(row.get("tags")))  # fmt: skip


def _tags(value) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [str(tag) for tag in value]
    return [tag.strip() for tag in str(value).replace("|", ";").split(";") if tag.strip()]


def read(item: Item, max_bytes: int, session: requests.Session | None = None, timeout: float = 30.0) -> bytes:
    """The bytes of `item` from its path or URL; SourceUnreadable (with the reason) if they cannot
    be read or are more than `max_bytes`."""
    try:
        if item.source.startswith(("http://", "https://")):
            return fetch_url(item.source, max_bytes, session, timeout)
        path = Path(item.source)
        if path.stat().st_size > max_bytes:
            raise ValueError(f"file is {path.stat().st_size} bytes; the limit is {max_bytes}")
        return path.read_bytes()
    except (OSError, ValueError, requests.RequestException) as exc:
        raise SourceUnreadable(f"cannot read: {exc}") from exc


def fetch_url(url: str, max_bytes: int, session: requests.Session | None = None, timeout: float = 30.0) -> bytes:
    """GET an http(s) URL, streaming, and refuse bodies over `max_bytes`."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("only http:// and https:// URLs are fetched")
    getter = session or requests
    with getter.get(url, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        chunks, size = [], 0
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > max_bytes:
                raise ValueError(f"{url} is larger than {max_bytes} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
