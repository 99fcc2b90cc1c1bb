"""What every search-side command shares: settings flags, and connecting model server + index."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from lookalike.client import EmbeddingClient, ModelServerError

from .backend import VectorIndex, open_index
from .embedding import ModelInfo, probe
from .errors import SearchError
from .settings import SearchSettings


@dataclass
class Stack:
    settings: SearchSettings
    client: EmbeddingClient
    info: ModelInfo
    index: VectorIndex


def add_common_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model server and index (defaults from LOOKALIKE_* variables)")
    group.add_argument("--ts-url", help="TorchServe inference URL (LOOKALIKE_TS_URL; http://127.0.0.1:8080)")
    group.add_argument("--model", help="TorchServe model name (LOOKALIKE_MODEL; efficientnet_lite0)")
    group.add_argument("--opensearch-url", help="OpenSearch URL; unset = embedded index (LOOKALIKE_OPENSEARCH_URL)")
    group.add_argument("--alias", help="index alias / name prefix (LOOKALIKE_ALIAS; lookalike)")
    group.add_argument("--index", help="OpenSearch: a physical index instead of the alias (LOOKALIKE_INDEX)")
    group.add_argument("--data-dir", type=Path, help="embedded index folder (LOOKALIKE_DATA_DIR; run/index)")
    group.add_argument("-v", "--verbose", action="store_true", help="log more")


def settings_from_args(args: argparse.Namespace) -> SearchSettings:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    return SearchSettings.from_env(
        ts_url=args.ts_url, model=args.model, opensearch_url=args.opensearch_url, alias=args.alias,
        index=args.index, data_dir=args.data_dir,
    )  # fmt: skip


def make_client(settings: SearchSettings) -> EmbeddingClient:
    # Given the key file (not the key read from it), the client re-reads it when a key expires.
    return EmbeddingClient(settings.ts_url, settings.model, token=settings.ts_token, key_file=settings.ts_key_file)


def connect(settings: SearchSettings) -> Stack:
    """Probe the model server for model id + dimension, then open the index for them."""
    client = make_client(settings)
    info = probe(client)
    return Stack(settings, client, info, open_index(settings, info.model, info.dimension))


def fail(exc: Exception) -> int:
    """Print a clear one-line error for the known failures; the exit code to return."""
    if isinstance(exc, ModelServerError):
        print(f"error: model server: {exc.reason} (status {exc.status})")
        return 3
    if isinstance(exc, SearchError):
        print(f"error: {exc.reason}")
        return 2
    raise exc
