"""Every failure the search side reports, defined once: the HTTP status the API answers and the
exit code the CLIs return. Raised narrowly, translated only at the edges (api/, cli/).
"""

from __future__ import annotations


class LookalikeError(Exception):
    status = 500  # HTTP status at the API
    exit_code = 2  # exit code at the CLI

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SettingsError(LookalikeError):
    """A setting (environment variable or flag) has a value we cannot use."""

    status = 500
    exit_code = 2


# --- the model server (TorchServe) ---------------------------------------------------------------
class ModelServerError(LookalikeError):
    """The model server could not embed an image. `upstream` is TorchServe's own status, if any."""

    status = 503
    exit_code = 3

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


class ImageRefused(ModelServerError):
    """The model server refused this image: its own 4xx status and reason, passed on unchanged."""

    exit_code = 1

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason, upstream=status)
        self.status = status


# --- the index and queries -----------------------------------------------------------------------
class IndexMismatch(LookalikeError):
    """The index was built for another model, dimension or space: refuse before any write."""

    status = 409


class IndexUnavailable(LookalikeError):
    """The index (OpenSearch cluster or local files) cannot be reached or read."""

    status = 503


class NotFound(LookalikeError):
    status = 404


class BadQuery(LookalikeError):
    status = 400


class UploadTooLarge(LookalikeError):
    status = 413
