"""The OpenSearch backend: a k-NN index (knn_vector, cosinesimil, HNSW) behind an alias; its client
and the translation of its failures are opensearch_client.py.

The physical index is named `<alias>-<model>-<dimension>-<UTC timestamp>` and the alias
points at the live one, so a new model is indexed next to the old and swapped in at once
(`lookalike admin swap`). Opening checks the live index's model, dimension and
space before anything is written. Credentials never reach a log line.

The k-NN engine is always named in the mapping: a field without one defaults to faiss, whose
native library the Maven Central build of k-NN lacks, and the node dies at the first flush.
`engine=auto` takes faiss only where every node declares its native libraries
(node.attr.knn_native: true, as our launcher writes), else Lucene; faiss is refused outright
on a node that declares it has none.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from lookalike.errors import IndexMismatch, SettingsError
from lookalike.index.documents import Doc, Hit, scheme_mismatch
from lookalike.index.opensearch_client import connect, every_call_translated, unavailable
from lookalike.index.opensearch_query import META_FIELDS, hits_of, search_body
from lookalike.index.tuning import Tuning
from lookalike.resources import asset
from lookalike.settings import Settings

logger = logging.getLogger(__name__)

MAPPING_FILE = asset("opensearch", "mapping.json")  # the repository's opensearch/, as package data
SPACE = "cosinesimil"
M, EF_CONSTRUCTION = 16, 100  # a new index's HNSW build unless LOOKALIKE_M / LOOKALIKE_EF_CONSTRUCTION say


def native_libraries(client: OpenSearch) -> bool | None:
    """Whether the cluster's k-NN can run faiss: True if every node declares its native libraries,
    False if any declares it lacks them, None if no node says (a cluster our launcher did not start)."""
    nodes = client.nodes.info()["nodes"].values()
    declared = [node.get("attributes", {}).get("knn_native") for node in nodes]
    if "false" in declared:
        return False
    return True if declared and all(value == "true" for value in declared) else None


def choose_engine(client: OpenSearch, wanted: str) -> str:
    """The engine a new index names (see the module docstring)."""
    native = native_libraries(client)
    if wanted == "auto":
        return "faiss" if native else "lucene"
    if wanted == "faiss" and native is False:
        raise SettingsError("LOOKALIKE_ENGINE=faiss, but this OpenSearch's k-NN plugin has no native libraries "
                            "(the Maven Central build): faiss would crash the node at its first flush. "
                            "Use LOOKALIKE_ENGINE=lucene or auto")  # fmt: skip
    return wanted


def derived_source(client: OpenSearch) -> bool:
    """k-NN 2.19+ can rebuild a vector in _source from the vector itself instead of storing its
    JSON text a second time (docs/constants.md); older clusters reject the setting."""
    major, minor = (int(part) for part in client.info()["version"]["number"].split(".")[:2])
    return (major, minor) >= (2, 19)


# LOOKALIKE_QUANTIZATION per engine: Lucene quantises to 7-bit integers per segment (k-NN 2.16+),
# faiss to float16; neither has the other's.
ENCODERS: dict[tuple[str, str], dict] = {
    ("lucene", "sq8"): {"name": "sq"},
    ("faiss", "fp16"): {"name": "sq", "parameters": {"type": "fp16"}},
}


def encoder(engine: str, quantization: str | None) -> dict | None:
    """The k-NN `encoder` of a new index's vector field, None for float32 vectors."""
    if quantization in (None, "none"):
        return None
    if (engine, quantization) not in ENCODERS:
        offered = ", ".join(q for e, q in ENCODERS if e == engine)
        raise SettingsError(f"LOOKALIKE_QUANTIZATION={quantization} is not offered by the {engine} engine "
                            f"(it offers none, {offered})")  # fmt: skip
    return ENCODERS[(engine, quantization)]


def index_body(model: str, dimension: int, settings: Settings, engine: str, derived: bool = True) -> dict:
    """The checked-in mapping.json with the model's dimension, engine and HNSW settings filled in."""
    body = copy.deepcopy(json.loads(MAPPING_FILE.read_text()))
    body["settings"]["index"].update(number_of_shards=settings.shards, number_of_replicas=settings.replicas)
    if not derived:
        body["settings"]["index"].pop("knn.derived_source.enabled", None)
    body["mappings"]["_meta"].update(model=model, dimension=dimension)
    field = body["mappings"]["properties"]["vector"]
    field["dimension"] = dimension
    field["method"]["engine"] = engine
    build = {"m": settings.m or M, "ef_construction": settings.ef_construction or EF_CONSTRUCTION}
    field["method"]["parameters"] = build
    if (codec := encoder(engine, settings.quantization)) is not None:
        field["method"]["parameters"]["encoder"] = codec
    body["mappings"]["_meta"]["regions"] = settings.regions
    if settings.regions != "none":  # each image's region vectors, as nested documents
        body["mappings"]["properties"]["regions"] = {
            "type": "nested", "properties": {"vector": copy.deepcopy(field), "box": {"type": "float", "index": False}},
        }  # fmt: skip
    return body


def mappings(client: OpenSearch, name: str) -> dict:
    """Index `name`'s mappings: its fields and its _meta."""
    return client.indices.get_mapping(index=name)[name]["mappings"]


def vector_field(client: OpenSearch, name: str) -> dict:
    return mappings(client, name).get("properties", {}).get("vector", {})


def physical_name(alias: str, model: str, dimension: int) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    return f"{alias}-{model}-{dimension}-{stamp}".lower()


@every_call_translated
class OpenSearchIndex:
    def __init__(self, settings: Settings, model: str, dimension: int, client: OpenSearch | None = None):
        self.settings, self.model, self.dimension, self.alias = settings, model, dimension, settings.alias
        self.target = settings.index or settings.alias  # where reads and writes go
        self.client = client or connect(settings)
        if settings.index:  # a physical index being built, e.g. for a new model before a swap
            if not self.client.indices.exists(index=settings.index):
                raise IndexMismatch(f"index {settings.index} does not exist (lookalike admin create)")
            self.name = settings.index
        else:
            self.name = self._live_index() or self.create(attach=True)
        self._check(self.name)
        # efSearch: recorded by lookalike admin recall --target (the mapping's _meta), else the configured one
        self.tuning = Tuning(self._recorded_tuning, self._write_tuning, settings.ef_search,
                             "settings (LOOKALIKE_EF_SEARCH, sent with each query)")  # fmt: skip

    # -- identity and aliases -----------------------------------------------------------------
    def _live_index(self) -> str | None:
        found = alias_targets(self.client, self.alias)
        if not found:
            return None
        if len(found) != 1:
            raise IndexMismatch(f"alias {self.alias} points at {len(found)} indices; expected one")
        return found[0]

    def create(self, attach: bool = False) -> str:
        """A fresh physical index for this model; `attach` points the alias at it (no alias yet)."""
        name = create_index(self.client, self.settings, self.model, self.dimension)
        if attach:
            self.client.indices.update_aliases(body={"actions": [{"add": {"index": name, "alias": self.alias}}]})
        return name

    def _check(self, name: str) -> None:
        check_index(self.client, name, self.model, self.dimension, self.settings.regions)

    def _meta(self) -> dict:
        return mappings(self.client, self.name).get("_meta", {})

    def _recorded_tuning(self) -> dict | None:
        try:
            return self._meta().get("recall")
        except (OSConnectionError, TransportError) as exc:  # a search goes on with what it had
            reason = unavailable(exc, self.settings) or exc
            logger.warning("could not read the recorded efSearch of %s: %s", self.name, reason)
            return self.tuning.recorded if hasattr(self, "tuning") else None

    def _write_tuning(self, summary: dict) -> None:
        """Into the mapping's _meta beside model, dimension and regions (PUT _mapping replaces the
        whole _meta, so it is read and merged first)."""
        self.client.indices.put_mapping(index=self.name, body={"_meta": {**self._meta(), "recall": summary}})

    def describe(self) -> dict:
        method = vector_field(self.client, self.name).get("method", {})
        engine = method.get("engine", "faiss")
        codec = method.get("parameters", {}).get("encoder")
        return {"backend": "opensearch", "alias": self.alias, "index": self.name, "model": self.model,
                "dimension": self.dimension, "space": SPACE, "engine": engine,
                "encoder": codec, "count": self.count(), **self.tuning.describe()}  # fmt: skip

    def ping(self) -> None:
        self.client.count(index=self.target)

    def refresh(self) -> None:
        self.client.indices.refresh(index=self.target)

    def flush(self) -> None:
        self.refresh()

    def close(self) -> None:
        self.flush()

    def merge(self, segments: int = 1) -> dict:
        """Force-merge to `segments` per shard after a bulk load: Lucene searches one HNSW graph per
        segment, so fewer segments answer faster (measured: docs/opensearch.md). Blocks until done."""
        before = len(self.client.cat.segments(index=self.name, format="json"))
        started = time.monotonic()
        self.client.indices.forcemerge(index=self.name, max_num_segments=segments, request_timeout=6 * 3600)
        self.flush()
        after = len(self.client.cat.segments(index=self.name, format="json"))
        return {"index": self.name, "segments_before": before, "segments_after": after,
                "seconds": round(time.monotonic() - started, 1)}  # fmt: skip

    # -- writes -------------------------------------------------------------------------------
    def upsert(self, docs: list[Doc], retries: int = 5) -> tuple[int, list[tuple[str, str]]]:
        """Bulk-index `docs` by id; 429s are retried by the helper, 5xx here, with back-off."""
        pending: dict[str, Doc] = {}
        failures: list[tuple[str, str]] = []
        for doc in docs:
            if (mismatch := scheme_mismatch(doc, self.settings.regions)) is not None:
                failures.append((doc.id, mismatch))
            else:
                pending[doc.id] = doc
        written = 0
        for attempt in range(retries + 1):
            retry: dict[str, Doc] = {}
            actions = ({"_op_type": "index", "_index": self.target, "_id": doc.id, "_source": _source(doc)}
                       for doc in pending.values())  # fmt: skip
            for ok, item in helpers.streaming_bulk(
                self.client, actions, chunk_size=200, max_retries=retries, initial_backoff=1,
                raise_on_error=False, raise_on_exception=False,
            ):  # fmt: skip
                info = item.get("index", {})
                doc_id, status = info.get("_id"), info.get("status", 0)
                if ok:
                    written += 1
                elif (status >= 500 or status == 0) and attempt < retries:
                    retry[doc_id] = pending[doc_id]
                else:
                    error = info.get("error")
                    reason = error.get("reason", str(error)) if isinstance(error, dict) else str(error)
                    failures.append((doc_id, f"OpenSearch {status}: {reason}"))
            if not retry:
                break
            pending = retry
            time.sleep(min(30, 2**attempt))
        return written, failures

    def delete(self, doc_id: str) -> bool:
        try:
            self.client.delete(index=self.target, id=doc_id)
            return True
        except NotFoundError:
            return False

    # -- reads --------------------------------------------------------------------------------
    def existing(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            response = self.client.mget(index=self.target, body={"ids": ids[start : start + 500]}, _source=False)
            found.update(doc["_id"] for doc in response["docs"] if doc.get("found"))
        return found

    def count(self) -> int:
        return int(self.client.count(index=self.target)["count"])

    def categories(self) -> dict[str, int]:
        body = {"size": 0, "aggs": {"c": {"terms": {"field": "category", "size": 10000}}}}
        buckets = self.client.search(index=self.target, body=body)["aggregations"]["c"]["buckets"]
        return {bucket["key"]: int(bucket["doc_count"]) for bucket in sorted(buckets, key=lambda b: b["key"])}

    def get(self, doc_id: str) -> Doc | None:
        try:
            source = self.client.get(index=self.target, id=doc_id)["_source"]
        except NotFoundError:
            return None
        return _doc(source, self.settings.regions)

    def scan(self, batch: int = 500) -> Iterator[Doc]:
        after = None
        while True:
            body: dict = {"size": batch, "query": {"match_all": {}}, "sort": [{"id": "asc"}]}
            if after is not None:
                body["search_after"] = after
            hits = self.client.search(index=self.target, body=body)["hits"]["hits"]
            if not hits:
                return
            for hit in hits:
                yield _doc(hit["_source"], self.settings.regions)
            after = hits[-1]["sort"]

    def search(
        self, vector: np.ndarray, k: int = 10, *, category: str | None = None, tags: Iterable[str] = (),
        exclude_ids: Iterable[str] = (), min_similarity: float | None = None, by_regions: bool = True,
        ef_search: int | None = None,
    ) -> list[Hit]:  # fmt: skip
        filters: list[dict] = [{"term": {"category": category}}] if category is not None else []
        filters += [{"term": {"tags": tag}} for tag in tags]
        by_regions = by_regions and self.settings.regions != "none"
        body = search_body(vector, k, ef_search or self.tuning.ef_search, filters, list(exclude_ids), by_regions)
        return hits_of(self.client.search(index=self.target, body=body), min_similarity)

    # -- alias operations -------------------------------------------------------------------


def create_index(client: OpenSearch, settings: Settings, model: str, dimension: int) -> str:
    """Create a physical index for `model` from mapping.json; returns its name."""
    name = physical_name(settings.alias, model, dimension)
    engine = choose_engine(client, settings.engine)
    client.indices.create(index=name, body=index_body(model, dimension, settings, engine, derived_source(client)))
    logger.info("created index %s (engine %s)", name, engine)
    return name


def check_index(client: OpenSearch, name: str, model: str, dimension: int, regions: str | None = None) -> None:
    """Raise IndexMismatch unless index `name` holds `model` vectors of `dimension` in cosine space
    (and region vectors of scheme `regions`, when given), with an engine this cluster can run."""
    mapping = mappings(client, name)
    field = mapping.get("properties", {}).get("vector", {})
    meta = mapping.get("_meta", {})
    engine = field.get("method", {}).get("engine", "faiss")  # what 2.19 assumes when none is named
    if engine in ("faiss", "nmslib") and native_libraries(client) is False:
        raise IndexMismatch(f"index {name} uses the {engine} engine, which this cluster's k-NN plugin cannot run "
                            "(no native libraries); re-index into a Lucene index (lookalike admin create)")  # fmt: skip
    found = {"model": meta.get("model"), "dimension": field.get("dimension"), "space": field.get("space_type"),
             "regions": meta.get("regions", "none")}  # fmt: skip
    want = {"model": model, "dimension": dimension, "space": SPACE, "regions": regions or found["regions"]}
    diff = [f"{key} is {found[key]!r}, not {want[key]!r}" for key in want if found[key] != want[key]]
    if diff:
        raise IndexMismatch(f"index {name}: {', '.join(diff)}; build a new index and swap the alias "
                            "(lookalike admin --help)")  # fmt: skip


def alias_targets(client: OpenSearch, alias: str) -> list[str]:
    """The indices `alias` points at ([] if it names none), asked through the alias itself
    (GET <alias>/_alias): a user whose role covers only our indices may ask that, while
    GET _alias/<alias> asks about every index of the cluster."""
    try:  # a 404 is an answer here, not a failure to log (the API asks every second during a rollout)
        found = client.indices.get_alias(index=alias, ignore=404)
    except NotFoundError:
        return []
    return sorted(name for name, entry in found.items()
                  if isinstance(entry, dict) and alias in entry.get("aliases", {}))  # fmt: skip


def swap_alias(client: OpenSearch, alias: str, new_index: str, model: str, dimension: int) -> str | None:
    """Point `alias` at `new_index` in one atomic update (after checking it); returns the old index."""
    check_index(client, new_index, model, dimension)
    targets = alias_targets(client, alias)
    old = targets[0] if targets else None
    actions = [{"remove": {"index": old, "alias": alias}}] if old else []
    actions.append({"add": {"index": new_index, "alias": alias}})
    client.indices.update_aliases(body={"actions": actions})
    return old


def _source(doc: Doc) -> dict:
    source = doc.metadata()
    source["vector"] = np.asarray(doc.vector, dtype=np.float32)
    if doc.regions:
        source["regions"] = [{"vector": np.asarray(v, dtype=np.float32), "box": list(box)} for box, v in doc.regions]
    return source


def _doc(source: dict, scheme: str = "none") -> Doc:
    meta: dict[str, Any] = {key: source.get(key) for key in META_FIELDS}
    meta["tags"] = list(meta.get("tags") or [])
    regions = [(tuple(r["box"]), np.asarray(r["vector"], dtype=np.float32)) for r in source.get("regions", [])]
    return Doc(vector=np.asarray(source["vector"], dtype=np.float32), region_scheme=scheme, regions=regions, **meta)
