"""Every failure the search side reports, defined once: the HTTP status the API answers and the
exit code the CLIs return. Raised narrowly, translated only at the edges (api/, cli/).
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Subclasses name their HTTP status at the API and exit code at the CLI as class keywords."""

    status = 500
    exit_code = 2

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __init_subclass__(cls, status: int | None = None, exit_code: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if exit_code is not None:
            cls.exit_code = exit_code


class SettingsError(LookalikeError, status=500, exit_code=2):
    """A setting (environment variable or flag) has a value we cannot use."""


# --- the model server (TorchServe) ---------------------------------------------------------------
class ModelServerError(LookalikeError, status=503, exit_code=3):
    """The model server could not embed an image. `upstream` is TorchServe's own status, if any."""

    def __init__(self, reason: str, upstream: int | None = None) -> None:
        super().__init__(reason)
        self.upstream = upstream

    @property
    def retryable(self) -> bool:
        """Overloaded or a worker restarting (503/507): worth a retry after a pause."""
        return self.upstream in (503, 507)


class ModelServerDown(ModelServerError):
    """Unreachable, failing (5xx), or answering something that is not our wire format."""


class ModelServerAuth(ModelServerError):
    """TorchServe rejected our bearer key (it says 400 InvalidKeyException)."""


class ImageRefused(ModelServerError, exit_code=1):
    """The model server refused this image: its own 4xx status and reason, passed on unchanged."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason, upstream=status)
        self.status = status


# --- the index and queries -----------------------------------------------------------------------
class IndexMismatch(LookalikeError, status=409):
    """The index was built for another model, dimension or space: refuse before any write.

    Raised when an index is opened; the fix is a new index for the model (`lookalike admin create`)."""


class IndexUnavailable(LookalikeError, status=503):
    """The index (OpenSearch cluster or local files) cannot be reached or read.

    The API answers 503 and /healthz names the index; the search stays available once it returns."""


class NotFound(LookalikeError, status=404):
    """No indexed image has that id (`/similar/{id}`, `lookalike similar ID`)."""


class BadQuery(LookalikeError, status=400):
    """A query or command line that cannot be answered as given."""


class SourceUnreadable(LookalikeError, status=422, exit_code=1):
    """An image file, URL or manifest that ingest could not read (missing, too large, HTTP error)."""


class UploadTooLarge(LookalikeError, status=413):
    """An upload over LOOKALIKE_MAX_IMAGE_BYTES."""


# --- the local OpenSearch node (lookalike opensearch / make opensearch) ---------------------------
class NodeError(LookalikeError, status=503, exit_code=4):
    """The local OpenSearch node could not be installed or started; the reason says what to do."""


# --- the API's own keys ----------------------------------------------------------------------------
class Unauthorized(LookalikeError, status=401):
    """No API key, or a wrong one, on a route that needs it."""


class Forbidden(LookalikeError, status=403):
    """A route that is switched off (writes with no LOOKALIKE_API_KEY set)."""


class UnsupportedMedia(LookalikeError, status=415):
    """An upload that is not an image (caught before the model server for PUT thumbnails)."""
