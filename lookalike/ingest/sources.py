"""Where images come from: a folder (recursive) or a CSV/JSONL manifest -> `Item`s with their bytes.

Manifest columns / keys: `path` or `url` (one is required), optional `id`, `category`,
`tags` (CSV: separated by `;` or `|`; JSONL: a list or such a string). Relative paths are
relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".jfif", ".heic", ".avif"}


@dataclass
class Item:
    source: str  # path or URL
    id: str | None = None  # given id; else sha256 of the bytes
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    data: bytes | None = None
    error: str | None = None  # why the bytes could not be read

    def doc_id(self) -> str:
        return self.id or hashlib.sha256(self.data or b"").hexdigest()


def from_folder(root: Path) -> Iterator[Item]:
    """Image files under `root` (by suffix), sorted; a first-level sub-folder name becomes the category."""
    root = Path(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        parts = path.relative_to(root).parts
        yield Item(source=str(path), category=parts[0] if len(parts) > 1 else None)


def from_manifest(manifest: Path) -> Iterator[Item]:
    manifest = Path(manifest)
    rows: Iterable[dict]
    if manifest.suffix.lower() in (".jsonl", ".ndjson"):
        rows = (json.loads(line) for line in manifest.read_text().splitlines() if line.strip())
    else:
        rows = csv.DictReader(manifest.open(newline=""))
    for number, row in enumerate(rows, start=1):
        location = row.get("url") or row.get("path")
        if not location:
            raise ValueError(f"{manifest}:{number}: needs a 'path' or 'url'")
        if not str(location).startswith(("http://", "https://")):
            location = str((manifest.parent / location).resolve()) if not Path(location).is_absolute() else location
        yield Item(source=str(location), id=row.get("id") or None, category=row.get("category") or None,
                   tags=_tags(row.get("tags")))  # fmt: skip


def _tags(value) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [str(tag) for tag in value]
    return [tag.strip() for tag in str(value).replace("|", ";").split(";") if tag.strip()]


def read(item: Item, max_bytes: int, session: requests.Session | None = None, timeout: float = 30.0) -> Item:
    """Fill `item.data` (or `item.error`) from its path or URL, refusing more than `max_bytes`."""
    try:
        if item.source.startswith(("http://", "https://")):
            item.data = fetch_url(item.source, max_bytes, session, timeout)
        else:
            path = Path(item.source)
            if path.stat().st_size > max_bytes:
                raise ValueError(f"file is {path.stat().st_size} bytes; the limit is {max_bytes}")
            item.data = path.read_bytes()
    except (OSError, ValueError, requests.RequestException) as exc:
        item.error = f"cannot read: {exc}"
    return item


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
