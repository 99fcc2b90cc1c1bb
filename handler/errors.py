"""Every way a request can be refused, each with its HTTP status, defined once.

The handler turns these into a per-request status; the search API reuses the
status and reason unchanged.
"""

from __future__ import annotations


class ImageError(Exception):
    """A request the server refuses; `status` is the HTTP code, `reason` says why."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EmptyImage(ImageError):
    status = 400


class BadPayload(ImageError):
    """The request is not shaped as any accepted input (raw, multipart, base64 JSON)."""

    status = 400


class CorruptImage(ImageError):
    """The bytes claim an image format but cannot be decoded (truncated, damaged)."""

    status = 400


class NotAnImage(ImageError):
    """The bytes are text, HTML, JSON or something else that is not an image."""

    status = 415


class UnsupportedFormat(ImageError):
    """A real image, in a format we do not accept."""

    status = 415


class ImageTooLarge(ImageError):
    """More bytes or more pixels than the configured limits allow."""

    status = 413


class ImageTooSmall(ImageError):
    """Fewer pixels on a side than the configured minimum."""

    status = 422


class ConfigError(Exception):
    """The model configuration is wrong; raised at start-up, never per request."""
