"""Search: by image (file, URL or bytes) or by an indexed id; filters; per-category; thresholds.

python -m opensearch.search photo.jpg -k 5
python -m opensearch.search --id <sha256> --category kitchens --json
python -m opensearch.search photo.jpg --per-category 3
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lookalike.client import EmbeddingClient

from . import cli
from .backend import VectorIndex
from .documents import Hit
from .embedding import embed_with_retry
from .errors import BadQuery, NotFound
from .sources import fetch_url

MAX_K = 1000


def by_vector(
    index: VectorIndex, vector: np.ndarray, k: int = 10, category: str | None = None, tags: Iterable[str] = (),
    min_similarity: float | None = None, exclude_ids: Iterable[str] = (),
) -> list[Hit]:  # fmt: skip
    if not 1 <= k <= MAX_K:
        raise BadQuery(f"k must be between 1 and {MAX_K}")
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
        raise BadQuery("min_similarity is a cosine: between -1 and 1")
    return index.search(vector, k, category, list(tags), list(exclude_ids), min_similarity)


def by_image(index: VectorIndex, client: EmbeddingClient, image: bytes, **filters) -> list[Hit]:
    """Embed `image` with the model server, then search."""
    return by_vector(index, embed_with_retry(client, image), **filters)


def stored_vector(index: VectorIndex, doc_id: str) -> np.ndarray:
    """The vector of an indexed document; NotFound if there is none."""
    doc = index.get(doc_id)
    if doc is None:
        raise NotFound(f"no document with id {doc_id}")
    return doc.vector


def more_like_this(index: VectorIndex, doc_id: str, **filters) -> list[Hit]:
    """Look-alikes of an indexed document, excluding itself."""
    return by_vector(index, stored_vector(index, doc_id), exclude_ids=[doc_id], **filters)


def per_category(index: VectorIndex, vector: np.ndarray, n: int = 3, exclude_ids: Iterable[str] = ()) -> dict:
    """The best `n` matches within each category: where a query sits among the classes."""
    return {category: index.search(vector, n, category, [], list(exclude_ids), None)
            for category in index.categories()}  # fmt: skip


def format_table(hits: list[Hit]) -> str:
    if not hits:
        return "(no hits)"
    lines = [f"{'#':>3}  {'cosine':>7}  {'dist':>6}  {'category':<14} {'id':<14} source"]
    for rank, hit in enumerate(hits, start=1):
        meta = hit.metadata
        lines.append(f"{rank:>3}  {hit.similarity:>7.4f}  {hit.distance:>6.4f}  {meta.get('category') or '-'!s:<14} "
                     f"{hit.id[:12]:<14} {meta.get('source') or ''}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opensearch.search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", nargs="?", help="image file to search with")
    parser.add_argument("--url", help="image URL to search with")
    parser.add_argument("--id", help="search with an indexed document (more like this, itself excluded)")
    parser.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    parser.add_argument("--category", help="only this category")
    parser.add_argument("--tag", action="append", default=[], help="only documents with this tag (repeatable: all)")
    parser.add_argument("--min-similarity", type=float, help="drop hits below this cosine")
    parser.add_argument("--per-category", type=int, metavar="N", help="the best N per category instead")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    cli.add_common_args(parser)
    args = parser.parse_args(argv)
    if sum(x is not None for x in (args.image, args.url, args.id)) != 1:
        parser.error("give exactly one of IMAGE, --url or --id")
    settings = cli.settings_from_args(args)
    try:
        stack = cli.connect(settings)
        exclude = [args.id] if args.id else []
        if args.id:
            vector = stored_vector(stack.index, args.id)
        else:
            data = Path(args.image).read_bytes() if args.image else fetch_url(args.url, settings.max_image_bytes)
            vector = embed_with_retry(stack.client, data)
        if args.per_category:
            groups = per_category(stack.index, vector, args.per_category, exclude)
            result = {category: [hit.to_dict() for hit in hits] for category, hits in groups.items()}
            text = "\n\n".join(f"[{category}]\n{format_table(hits)}" for category, hits in groups.items())
        else:
            hits = by_vector(stack.index, vector, args.k, args.category, args.tag, args.min_similarity, exclude)
            result, text = [hit.to_dict() for hit in hits], format_table(hits)
    except Exception as exc:
        return cli.fail(exc)
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
