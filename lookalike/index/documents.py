"""What the index stores and returns: `Doc` in, `Hit` out, and the score conversions."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from lookalike_handler.regions import SCHEMES
from PIL import Image

logger = logging.getLogger(__name__)

Region = tuple[tuple[float, float, float, float], np.ndarray]  # (left, top, right, bottom) in fractions, [D]


@dataclass
class Doc:
    id: str
    vector: np.ndarray  # float32 [D], L2-normalised
    model: str
    source: str | None = None  # path or URL
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    ingested_at: str | None = None  # ISO 8601 UTC
    region_scheme: str = "none"  # which windows `regions` holds (lookalike_handler.regions)
    regions: list[Region] = field(default_factory=list)  # (box, float32 [D]) per window of the scheme

    def metadata(self) -> dict:
        meta = {key: value for key, value in vars(self).items() if key not in ("vector", "regions", "region_scheme")}
        meta["tags"] = list(self.tags)
        return meta

    @classmethod
    def of_image(cls, doc_id: str, vector: np.ndarray, model: str, image: bytes, source: str | None,
                 category: str | None, tags: list[str], region_scheme: str = "none",
                 regions: list[Region] | None = None) -> Doc:  # fmt: skip
        """The document for an image just embedded: its pixel size read from the bytes, stamped now."""
        width, height = pixel_size(image, doc_id)
        return cls(id=doc_id, vector=vector, model=model, source=source, category=category, tags=tags,
                   width=width, height=height, ingested_at=datetime.now(UTC).isoformat(),
                   region_scheme=region_scheme, regions=regions or [])  # fmt: skip


def pixel_size(image: bytes, doc_id: str) -> tuple[int | None, int | None]:
    """(width, height) read from the image's header; (None, None), logged, when it cannot be read
    (the model server decoded it, so this is rare: the document is kept, its size unknown, and
    ingest counts it)."""
    try:
        return Image.open(io.BytesIO(image)).size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        logger.warning("the pixel size of %s cannot be read (%s): indexed without it", doc_id, exc)
        return None, None


def scheme_mismatch(doc: Doc, scheme: str) -> str | None:
    """Why `doc` cannot go into an index holding region vectors of `scheme` (both backends), or None."""
    if doc.region_scheme == scheme and len(doc.regions) == len(SCHEMES[scheme]):
        return None
    return f"document has {len(doc.regions)} region vectors ({doc.region_scheme}), the index holds regions {scheme}"


@dataclass
class Hit:
    id: str
    similarity: float  # cosine in [-1, 1]
    metadata: dict
    box: tuple[float, float, float, float] | None = None  # the matching region, if a region matched best
    verdict: dict | None = None  # search with verification: lookalike.verify's verdict on it, and why

    @property
    def distance(self) -> float:
        """Euclidean distance between the two L2-normalised vectors: sqrt(2 - 2 cos)."""
        return math.sqrt(max(0.0, 2.0 - 2.0 * self.similarity))

    def to_dict(self) -> dict:
        out = {"id": self.id, "similarity": round(self.similarity, 6), "distance": round(self.distance, 6),
               **{k: v for k, v in self.metadata.items() if k != "id"}}  # fmt: skip
        if self.box is not None:
            out["box"] = [round(x, 4) for x in self.box]
        if self.verdict is not None:
            out["verdict"] = self.verdict["verdict"]
            out["verification"] = {key: value for key, value in self.verdict.items() if key != "verdict"}
        return out


def cosine_from_score(score: float) -> float:
    """OpenSearch cosinesimil score (1 + cos) / 2 -> cos."""
    return 2.0 * score - 1.0


def score_from_cosine(cos: float) -> float:
    return (1.0 + cos) / 2.0
