"""What each route answers, as pydantic models: /openapi.json describes every answer with them and
schemathesis (tests/api/test_contract.py) holds the server to them. The routes still build plain
records; a model names each field a client can rely on, and lets a field we add later through
(extra="allow") rather than drop it. Routes serialise with `exclude_unset`, so a field that a record
does not carry (a hit's box, a verdict) stays absent instead of turning into null."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class ImageOut(Answer):
    """An indexed image's metadata."""

    id: str
    model: str | None = None
    source: str | None = Field(None, description="its path or URL (upload:<id> for an uploaded one)")
    category: str | None = None
    tags: list[str] = []
    width: int | None = Field(None, description="pixels (unknown when its header could not be read)")
    height: int | None = None
    ingested_at: str | None = Field(None, description="ISO 8601, UTC")


class HitOut(ImageOut):
    """One look-alike: the image's metadata and how close it is."""

    similarity: float = Field(description="cosine similarity, -1 to 1")
    distance: float = Field(description="Euclidean distance of the L2-normalised vectors: sqrt(2 - 2 cos)")
    box: list[float] | None = Field(None, description="the region that matched best (fractions: left, top, right, "
                                    "bottom), when a region did")  # fmt: skip
    verdict: Literal["copy", "part", "same_scene", "different", "unverified"] | None = Field(
        None,
        description="unless verify=false: what this image is to the query (unverified: it has no local "
        "features and its source cannot be read; the reason says why)",
    )
    verification: dict | None = Field(None, description="unless verify=false: the verdict's reason and evidence")


class SearchAnswer(Answer):
    """POST /search: the hits, or with per_category the best few of each category."""

    model: str = Field(description="the model that embedded the query")
    dimension: int
    archive: str | None = Field(None, description="the model server's archive that embedded it: <name>/<version>")
    hits: list[HitOut] | None = None
    per_category: dict[str, list[HitOut]] | None = None
    took_ms: float


class SimilarAnswer(Answer):
    """GET /similar/{id}: the look-alikes of an indexed image, itself excluded."""

    id: str
    hits: list[HitOut]
    took_ms: float


class Category(Answer):
    name: str
    count: int


class Categories(Answer):
    categories: list[Category]


class Health(Answer):
    """GET /healthz: 200 when both answer, 503 when either does not (its field says why)."""

    status: Literal["ok", "unavailable"]
    model_server: str
    index: dict | str = Field(description="the index's description, or why it is unavailable")
    precision: str = Field(description="the precision the model server last answered at")


class Probe(Answer):
    """GET /live and GET /ready: 200 or 503, and what is wrong."""

    status: Literal["alive", "ready", "not ready"]
    problems: list[str] = Field(default_factory=list, description="why the replica is not ready (empty when it is)")


class PutAnswer(ImageOut):
    """PUT /images/{id}: the stored metadata, and whether the image is new."""

    created: bool


class DecisionOut(Answer):
    decision: str
    ids: list[str]
    keep: str | None = None
    at: str | None = None
    key: str


class DecisionsAnswer(Answer):
    recorded: int
    decisions: list[DecisionOut]


class DuplicatesPage(Answer):
    """GET /duplicates (JSON): the last run, the counts per status, and one page of its groups."""

    run: dict | None = None
    status: Literal["pending", "decided", "all"]
    counts: dict[str, int]
    total: int
    page: int
    per_page: int
    groups: list[dict]
