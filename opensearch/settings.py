"""Search-side settings: one frozen dataclass filled from `LOOKALIKE_*` environment variables.

Credentials are kept out of `repr()` so they never reach a log line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    # Model server
    ts_url: str = "http://127.0.0.1:8080"
    model: str = "efficientnet_lite0"
    ts_token: str | None = dataclasses.field(default=None, repr=False)
    ts_key_file: str | None = None
    # Index: OpenSearch when opensearch_url is set, else the embedded index in data_dir
    opensearch_url: str | None = None
    opensearch_user: str | None = None
    opensearch_password: str | None = dataclasses.field(default=None, repr=False)
    opensearch_ca_file: str | None = None
    opensearch_verify: bool = True
    alias: str = "lookalike"
    index: str | None = None  # a physical OpenSearch index to use instead of the alias
    engine: str = "faiss"  # faiss | lucene (OpenSearch)
    m: int = 16
    ef_construction: int = 100
    ef_search: int = 100
    data_dir: Path = REPO / "run" / "index"
    # Uploads
    max_image_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> SearchSettings:
        env = os.environ if environ is None else environ
        values: dict = {}
        for field in dataclasses.fields(cls):
            raw = env.get("LOOKALIKE_" + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _coerce(field, raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        settings = cls(**values)
        if settings.engine not in ("faiss", "lucene"):
            raise ValueError(f"engine must be faiss or lucene, not {settings.engine!r}")
        return settings


def _coerce(field: dataclasses.Field, raw: str):
    kind = str(field.type)
    if kind.startswith("bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("Path"):
        return Path(raw)
    return raw
