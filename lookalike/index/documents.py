"""What the index stores and returns: `Doc` in, `Hit` out, and the score conversions."""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
from PIL import Image


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

    def metadata(self) -> dict:
        meta = asdict(self)
        meta.pop("vector")
        return meta

    @classmethod
    def of_image(cls, doc_id: str, vector: np.ndarray, model: str, image: bytes, source: str | None,
                 category: str | None, tags: list[str]) -> Doc:  # fmt: skip
        """The document for an image just embedded: its pixel size read from the bytes, stamped now."""
        try:
            width, height = Image.open(io.BytesIO(image)).size
        except Exception:
            width, height = None, None
        return cls(id=doc_id, vector=vector, model=model, source=source, category=category, tags=tags,
                   width=width, height=height, ingested_at=datetime.now(UTC).isoformat())  # fmt: skip


@dataclass
class Hit:
    id: str
    similarity: float  # cosine in [-1, 1]
    metadata: dict

    @property
    def distance(self) -> float:
        """Euclidean distance between the two L2-normalised vectors: sqrt(2 - 2 cos)."""
        return math.sqrt(max(0.0, 2.0 - 2.0 * self.similarity))

    def to_dict(self) -> dict:
        return {"id": self.id, "similarity": round(self.similarity, 6), "distance": round(self.distance, 6),
                **{k: v for k, v in self.metadata.items() if k != "id"}}  # fmt: skip


def cosine_from_score(score: float) -> float:
    """OpenSearch cosinesimil score (1 + cos) / 2 -> cos."""
    return 2.0 * score - 1.0


def score_from_cosine(cos: float) -> float:
    return (1.0 + cos) / 2.0
