"""Bad uploads, each with the status and the words of the reason a person should get back.

Shared by the decode unit tests and the served tests, so both prove the same corpus.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width x height` but carries one tiny IDAT: a decompression-bomb stand-in."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def _save(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def bad_inputs(jpeg: bytes) -> list[tuple[str, bytes, int, str]]:
    """(name, body, expected status, words expected in the reason); `jpeg` is a valid photo."""
    return [
        ("empty", b"", 400, "empty"),
        ("text", b"hello, this is not an image\n", 415, "text"),
        ("html", b"<!DOCTYPE html><html><body>404 Not Found</body></html>", 415, "HTML"),
        ("truncated-jpeg", jpeg[: len(jpeg) // 2], 400, "truncated"),
        ("random-binary", bytes(range(256)) * 8, 415, "not a recognised image"),
        ("too-small", _save(Image.new("RGB", (8, 8), "red"), "PNG"), 422, "at least 16"),
        ("unsupported-ico", _save(Image.new("RGB", (32, 32), "red"), "ICO"), 415, "ICO"),
        ("unsupported-heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64, 415, "HEIC"),
        ("bomb-over-limit", png_header_only(8000, 8000), 413, "pixels"),
        ("bomb-huge", png_header_only(60000, 60000), 413, "pixels"),
    ]
