"""Search-side failures, each with the HTTP status the API answers; defined once."""

from __future__ import annotations


class SearchError(Exception):
    status = 500

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IndexMismatch(SearchError):
    """The index was built for another model, dimension or space: refuse before any write."""

    status = 409


class IndexUnavailable(SearchError):
    """The index (OpenSearch cluster or local files) cannot be reached or read."""

    status = 503


class NotFound(SearchError):
    status = 404


class BadQuery(SearchError):
    status = 400


class UploadTooLarge(SearchError):
    status = 413


class ModelServerDown(SearchError):
    """TorchServe unreachable, failing, or refusing our bearer key."""

    status = 503


class ImageRefused(SearchError):
    """The model server refused the image: its own 4xx status and reason, passed on unchanged."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
