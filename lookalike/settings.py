"""Every default in one place, and the one reader of the `LOOKALIKE_*` environment variables.

`Settings.from_env()` fills a frozen dataclass from `LOOKALIKE_<FIELD>` (upper case), checks
each value and raises `SettingsError` naming the variable when one is wrong. Command-line
flags arrive as keyword overrides on top. Credentials stay out of `repr()` so they never
reach a log line.

The handler's own knobs (precision, decode, threads …) are not read here: they live in the
archive's model-config.yaml and are overridden per worker by `LOOKALIKE_HANDLER_<KEY>`
variables, which the TorchServe launcher forwards to the workers (`worker_environment`).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lookalike_handler.regions import SCHEMES

from lookalike.errors import SettingsError

ENV_PREFIX = "LOOKALIKE_"
WORKER_PREFIX = "LOOKALIKE_HANDLER_"


def checkout() -> Path | None:
    """The source checkout this package runs from (an editable install), or None when installed."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "handler").is_dir() else None


def default_home(environ: Mapping[str, str]) -> Path:
    """Where run state goes unless LOOKALIKE_HOME says: run/ in a checkout, else the user's state
    folder ($XDG_STATE_HOME/lookalike, ~/.local/state/lookalike)."""
    root = checkout()
    if root is not None:
        return root / "run"
    return Path(environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "lookalike"


# Run state (the embedded index, thumbnails, TorchServe's and OpenSearch's run folders, logs) lives
# under one home, LOOKALIKE_HOME; read here once, as module defaults derive from it. Built archives
# and benchmark reports go to model_store/ and reports/ in a checkout, else under the home too.
# Files the package reads (mapping, templates, config) are package data: lookalike.resources.
RUN_DIR = Path(os.environ.get(f"{ENV_PREFIX}HOME") or default_home(os.environ)).expanduser()
MODEL_STORE = (checkout() or RUN_DIR) / "model_store"
REPORTS_DIR = (checkout() or RUN_DIR) / "reports"

# The model `make mar`, `make serve`, the API and ingest all default to: the offline backbone,
# because ResNet50's pretrained weights cannot be fetched on every machine (`lookalike mar` says how).
DEFAULT_MODEL = "efficientnet_lite0"
TORCHSERVE_PORTS = {
    "inference": 8080,
    "management": 8081,
    "metrics": 8082,
    "grpc_inference": 7070,
    "grpc_management": 7071,
}
ENGINES = ("auto", "faiss", "lucene")  # auto: faiss only where every node declares k-NN native libraries
# How the HNSW graph holds its vectors. Embedded: none | fp16 | sq8 | rabitq, default sq8 (re-ranked
# exactly from SQLite). OpenSearch, for a new index: none (the default) | sq8 (Lucene's 7-bit sq) | fp16 (faiss).
QUANTIZATIONS = ("none", "fp16", "sq8", "rabitq")


@dataclasses.dataclass(frozen=True)
class Settings:
    # Model server
    ts_url: str = f"http://127.0.0.1:{TORCHSERVE_PORTS['inference']}"
    model: str = DEFAULT_MODEL
    ts_token: str | None = dataclasses.field(default=None, repr=False)
    ts_key_file: str | None = None
    ts_timeout: float = 60.0
    # Index: OpenSearch when opensearch_url is set, else the embedded index in data_dir
    opensearch_url: str | None = None  # one URL, or several comma-separated (nodes of one cluster)
    opensearch_user: str | None = None
    opensearch_password: str | None = dataclasses.field(default=None, repr=False)
    opensearch_ca_file: str | None = None
    opensearch_verify: bool = True
    # How requests are authenticated: "basic" (user and password, if a user is set) or "sigv4"
    # (Amazon OpenSearch Service: signed with the AWS credentials botocore finds, for this region)
    opensearch_auth: str = "basic"
    opensearch_region: str | None = None
    opensearch_service: str = "es"  # sigv4: "es" (managed domains) or "aoss" (Serverless)
    opensearch_timeout: float = 30.0  # seconds per request to OpenSearch (each of up to 4 tries)
    alias: str = "lookalike"
    index: str | None = None  # a physical OpenSearch index to use instead of the alias
    engine: str = "auto"  # OpenSearch k-NN engine: auto | faiss | lucene
    shards: int = 1  # OpenSearch primaries of a new index
    replicas: int = 0  # OpenSearch replicas of a new index (1+ on a cluster)
    quantization: str | None = None  # None: each backend's default (embedded sq8, OpenSearch none)
    regions: str = "none"  # region vectors per image besides the whole (lookalike_handler.regions.SCHEMES)
    m: int | None = None  # HNSW links per vector; None: each backend's default (embedded 32, OpenSearch 16)
    ef_construction: int | None = None  # None: each backend's default (embedded 320, OpenSearch 100)
    ef_search: int = 128  # recall@10 0.96 at 1M 2048-d vectors, sq8 (docs/operations.md)
    rerank: int = 4  # embedded, quantised graph: it proposes rerank x k candidates, re-ranked exactly
    projection: int = 128  # embedded, from PROJECT_SIZE vectors: the graph walks this many principal directions
    home: Path = RUN_DIR  # run state (LOOKALIKE_HOME); the paths below default to folders in it
    data_dir: Path = RUN_DIR / "index"
    # Archive building: ResNet50's pretrained weights file (else torch's hub cache)
    resnet50_weights: str | None = None
    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The model-server image's gate (lookalike.serving.gate): where it listens, what it serves
    gate_host: str = "127.0.0.1"
    gate_port: int = 8080
    gate_models: str = DEFAULT_MODEL  # comma-separated archive names, each <name>.mar in model_store
    gate_ts_port: int = 0  # TorchServe's first loopback port behind it; 0: free ports
    model_store: Path = MODEL_STORE
    signal_window: float = 30.0  # seconds the autoscaling gauges' means and ratio cover (both servers)
    drain_grace: float = 5.0  # after SIGTERM: /ready answers 503, requests still served this long (load balancers)
    drain_timeout: float = 30.0  # ... then at most this long for the requests in flight, then exit 0
    api_key: str | None = dataclasses.field(default=None, repr=False)  # writes (PUT/DELETE /images); unset: refused
    api_read_key: str | None = dataclasses.field(default=None, repr=False)  # reads too, when set
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser; none by default
    thumb_dir: Path = RUN_DIR / "thumbnails"
    thumb_size: int = 256
    # Limits, the same for the API, the CLIs and ingest
    max_image_bytes: int = 16 * 1024 * 1024
    max_k: int = 1000
    default_k: int = 10
    verify_candidates: int = 20  # search with verification judges this many of the nearest (at least k)
    verify_threads: int = 2  # a search judges its candidates on this many threads (OpenCV releases the GIL)
    feature_cache: int = 1024  # images whose local features are kept decoded in memory (~140 KB each)
    max_categories: int = 100  # per_category runs one k-NN query per category: refused past this many
    # The local OpenSearch node's downloads (lookalike opensearch start); None: a system or user cache
    opensearch_cache: Path | None = None
    # Load tests (loadtest/locustfile.py's option defaults): shape, query photos, weights, thresholds
    load_shape: str = "soak"
    load_photos: str = ""  # a folder of query images; empty: the bundled photos
    load_k: int | None = None  # hits per search; None: default_k
    load_rate: float = 0.0  # requests/s for the whole test; 0: as fast as the users go
    search_weight: int = 3
    similar_weight: int = 1
    embed_weight: int = 1
    max_fail_ratio: float = 0.01
    max_p95_ms: float = 1000.0
    min_rps: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `LOOKALIKE_*` variables, then `overrides` (None values are ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            name = ENV_PREFIX + field.name.upper()
            raw = env.get(name)
            if raw is not None and raw != "":
                values[field.name] = coerce(name, hints[field.name], raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        unknown = sorted(set(values) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(unknown)}")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise SettingsError(f"LOOKALIKE_ENGINE must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise SettingsError(f"LOOKALIKE_QUANTIZATION must be one of {', '.join(QUANTIZATIONS)}, "
                                f"not {self.quantization!r}")  # fmt: skip
        if self.regions not in SCHEMES:
            raise SettingsError(f"LOOKALIKE_REGIONS must be one of {', '.join(SCHEMES)}, not {self.regions!r}")
        for name in ("ts_url", "opensearch_url"):
            for url in (getattr(self, name) or "").split(",") if getattr(self, name) is not None else ():
                if not url.strip().startswith(("http://", "https://")):
                    raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be an http(s):// URL, not {url!r}")
        if self.opensearch_auth not in ("basic", "sigv4"):
            raise SettingsError(f"LOOKALIKE_OPENSEARCH_AUTH must be basic or sigv4, not {self.opensearch_auth!r}")
        if self.opensearch_auth == "sigv4" and not self.opensearch_region:
            raise SettingsError("LOOKALIKE_OPENSEARCH_AUTH=sigv4 needs LOOKALIKE_OPENSEARCH_REGION (e.g. eu-west-1)")
        for name in ("replicas", "projection"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be 0 or more, not {getattr(self, name)}")
        positive = ("m", "ef_construction", "ef_search", "rerank", "shards", "max_image_bytes", "max_k", "default_k",
                    "api_port", "max_categories", "opensearch_timeout", "ts_timeout", "verify_candidates",
                    "verify_threads", "feature_cache", "gate_port", "signal_window")  # fmt: skip
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be positive, not {getattr(self, name)}")
        if self.default_k > self.max_k:
            raise SettingsError(f"LOOKALIKE_DEFAULT_K ({self.default_k}) is above LOOKALIKE_MAX_K ({self.max_k})")

    @property
    def opensearch_hosts(self) -> list[str]:
        """The OpenSearch URLs (LOOKALIKE_OPENSEARCH_URL may list several nodes, comma-separated)."""
        return [url.strip() for url in (self.opensearch_url or "").split(",") if url.strip()]

    def replace(self, **changes: Any) -> Settings:
        settings = dataclasses.replace(self, **changes)
        settings.validate()
        return settings


def coerce(name: str, hint: Any, raw: str) -> Any:
    """`raw` as the field's type (bool, int, float, Path, str; optional or not); SettingsError if not."""
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    try:
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("expected true/false")
            return lowered in ("1", "true", "yes", "on")
        if hint in (int, float):
            return hint(raw)
        if hint is Path:
            return Path(raw).expanduser()
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {getattr(hint, '__name__', hint)}: {exc}") from exc
    return raw


def worker_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `LOOKALIKE_HANDLER_*` overrides to hand to TorchServe's workers, and nothing else of ours."""
    env = os.environ if environ is None else environ
    return {key: value for key, value in env.items() if key.startswith(WORKER_PREFIX)}
