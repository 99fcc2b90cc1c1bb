"""Small JPEG thumbnails of indexed images, cached on disk by a hash of the image id.

A thumbnail is made when an image is uploaded (PUT /images/{id}) or, for images ingested from
files, on first request from the file the index names as the image's source. The id never
becomes a path (the cache file is named by its SHA-256), and the only file ever read is the
indexed document's own source: nothing a request names is opened.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from lookalike.errors import NotFound
from lookalike.index.documents import Doc


class Thumbnails:
    def __init__(self, folder: Path, size: int = 256) -> None:
        self.folder, self.size = Path(folder), size

    def path(self, doc_id: str) -> Path:
        return self.folder / f"{hashlib.sha256(doc_id.encode()).hexdigest()}.jpg"

    def make(self, doc_id: str, image: bytes) -> Path:
        """Write the thumbnail of `image` (bytes the model server already accepted) for `doc_id`."""
        with Image.open(io.BytesIO(image)) as img:
            thumb = ImageOps.exif_transpose(img).convert("RGB")
        thumb.thumbnail((self.size, self.size))
        buffer = io.BytesIO()
        thumb.save(buffer, format="JPEG", quality=82)
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(doc_id)
        handle, tmp = tempfile.mkstemp(dir=self.folder, suffix=".part")
        with os.fdopen(handle, "wb") as out:
            out.write(buffer.getvalue())
        os.replace(tmp, target)
        return target

    def get(self, doc: Doc) -> Path:
        """The cached thumbnail of `doc`, made from its source file on first request."""
        cached = self.path(doc.id)
        if cached.is_file():
            return cached
        source = doc.source or ""
        if "://" in source or not source or not Path(source).is_file():
            raise NotFound(f"no thumbnail for {doc.id}: its source is not a local file (upload it with PUT)")
        return self.make(doc.id, Path(source).read_bytes())

    def drop(self, doc_id: str) -> None:
        self.path(doc_id).unlink(missing_ok=True)
