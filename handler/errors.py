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

    def __init_subclass__(cls, status: int = 400, **kwargs: object) -> None:
        super().__init_subclass__()
        cls.status = status


class EmptyImage(ImageError, status=400):
    """No bytes at all."""


class BadPayload(ImageError, status=400):
    """The request is not shaped as any accepted input (raw, multipart, base64 JSON)."""


class CorruptImage(ImageError, status=400):
    """The bytes claim an image format but cannot be decoded (truncated, damaged)."""


class NotAnImage(ImageError, status=415):
    """The bytes are text, HTML, JSON or something else that is not an image."""


class UnsupportedFormat(ImageError, status=415):
    """A real image, in a format we do not accept."""


class ImageTooLarge(ImageError, status=413):
    """More bytes or more pixels than the configured limits allow."""


class ImageTooSmall(ImageError, status=422):
    """Fewer pixels on a side than the configured minimum."""


class ConfigError(Exception):
    """The model configuration is wrong; raised at start-up, never per request."""
