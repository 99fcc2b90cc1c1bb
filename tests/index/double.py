"""A strict in-process stand-in for the OpenSearch REST subset Lookalike uses — a test fixture.

No OpenSearch server can be installed on our machines (see shared/DESIGN.md), so the
OpenSearch backend is tested against this double and, unchanged, against a real cluster
when OPENSEARCH_URL is set. It rejects what real OpenSearch rejects for our requests
(unknown mapping parameters, a knn_vector without dimension or with a wrong vector length,
zero vectors under cosinesimil, a knn query without k, unknown query clauses), makes writes
visible only after a refresh, and scores k-NN exactly as documented: (1 + cos) / 2.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

KNN_FIELD_KEYS = {"type", "dimension", "space_type", "method", "data_type", "mode", "compression_level"}
METHOD_KEYS = {"name", "engine", "parameters", "space_type"}
HNSW_PARAMS = {"m", "ef_construction", "ef_search", "encoder"}
SPACES = {"l2", "cosinesimil", "innerproduct", "l1", "linf"}
ENGINES = {"faiss", "lucene", "nmslib"}
SIMPLE_TYPES = {"keyword", "integer", "long", "float", "date", "text", "boolean"}


class ApiError(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason


class Index:
    def __init__(self, name: str, body: dict) -> None:
        self.name = name
        self.body = body
        self.docs: dict[str, dict] = {}  # searchable (refreshed)
        self.pending: dict[str, dict | None] = {}  # written, not yet refreshed (None = deleted)
        props = body["mappings"]["properties"]
        self.vector_field = next(name for name, spec in props.items() if spec.get("type") == "knn_vector")
        self.dimension = props[self.vector_field]["dimension"]

    def visible(self, doc_id: str) -> dict | None:
        if doc_id in self.pending:
            return self.pending[doc_id]
        return self.docs.get(doc_id)

    def refresh(self) -> None:
        for doc_id, source in self.pending.items():
            if source is None:
                self.docs.pop(doc_id, None)
            else:
                self.docs[doc_id] = source
        self.pending.clear()


def validate_index_body(body: dict) -> None:
    settings = body.get("settings", {}).get("index", {})
    if settings.get("knn") is not True:
        raise ApiError(400, "illegal_argument_exception", "knn_vector needs index.knn: true")
    props = body.get("mappings", {}).get("properties")
    if not isinstance(props, dict):
        raise ApiError(400, "mapper_parsing_exception", "mappings.properties missing")
    knn = 0
    for name, spec in props.items():
        kind = spec.get("type")
        if kind == "knn_vector":
            knn += 1
            unknown = set(spec) - KNN_FIELD_KEYS
            if unknown:
                raise ApiError(400, "mapper_parsing_exception", f"unknown parameters {sorted(unknown)} on {name}")
            dim = spec.get("dimension")
            if not isinstance(dim, int) or not 1 <= dim <= 16000:
                raise ApiError(400, "mapper_parsing_exception", f"dimension must be 1..16000, got {dim!r}")
            space = spec.get("space_type", spec.get("method", {}).get("space_type", "l2"))
            if space not in SPACES:
                raise ApiError(400, "mapper_parsing_exception", f"unknown space_type {space!r}")
            method = spec.get("method", {})
            if set(method) - METHOD_KEYS or method.get("name") != "hnsw" or method.get("engine") not in ENGINES:
                raise ApiError(400, "mapper_parsing_exception", f"bad method {method!r}")
            if set(method.get("parameters", {})) - HNSW_PARAMS:
                raise ApiError(400, "mapper_parsing_exception", f"bad hnsw parameters {method['parameters']!r}")
        elif kind not in SIMPLE_TYPES:
            raise ApiError(400, "mapper_parsing_exception", f"no handler for type [{kind}] on {name}")
    if knn != 1:
        raise ApiError(400, "mapper_parsing_exception", "the double supports exactly one knn_vector field")


class Cluster:
    def __init__(self) -> None:
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, str] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []

    def resolve(self, name: str) -> Index:
        name = self.aliases.get(name, name)
        if name not in self.indices:
            raise ApiError(404, "index_not_found_exception", f"no such index [{name}]")
        return self.indices[name]

    # -- documents --------------------------------------------------------------------------
    def put_doc(self, index: Index, doc_id: str, source: dict) -> None:
        vector = source.get(index.vector_field)
        if not isinstance(vector, list) or len(vector) != index.dimension:
            got = len(vector) if isinstance(vector, list) else type(vector).__name__
            raise ApiError(
                400, "mapper_parsing_exception", f"Vector dimension mismatch. Expected: {index.dimension}, Given: {got}"
            )
        if not any(vector):
            raise ApiError(400, "mapper_parsing_exception", "zero vector is not supported for cosinesimil")
        index.pending[doc_id] = source

    def bulk(self, default_index: str | None, body: bytes) -> dict:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        items, errors, i = [], False, 0
        while i < len(lines):
            ((op, meta),) = lines[i].items()
            i += 1
            doc_id = meta.get("_id")
            try:
                index = self.resolve(meta.get("_index") or default_index)
                if op == "index":
                    source = lines[i]
                    i += 1
                    created = index.visible(doc_id) is None
                    self.put_doc(index, doc_id, source)
                    items.append(
                        {
                            op: {
                                "_index": index.name,
                                "_id": doc_id,
                                "status": 201 if created else 200,
                                "result": "created" if created else "updated",
                            }
                        }
                    )
                elif op == "delete":
                    index.pending[doc_id] = None
                    items.append({op: {"_index": index.name, "_id": doc_id, "status": 200, "result": "deleted"}})
                else:
                    raise ApiError(400, "illegal_argument_exception", f"unsupported bulk action {op}")
            except ApiError as exc:
                errors = True
                if op == "index" and i < len(lines) and "index" not in lines[i] and "delete" not in lines[i]:
                    i += 1
                items.append(
                    {op: {"_id": doc_id, "status": exc.status, "error": {"type": exc.kind, "reason": exc.reason}}}
                )
        return {"took": 1, "errors": errors, "items": items}

    # -- search -----------------------------------------------------------------------------
    def matches(self, doc_id: str, source: dict, clause: dict) -> bool:
        ((kind, spec),) = clause.items()
        if kind == "term":
            ((field, value),) = spec.items()
            value = value["value"] if isinstance(value, dict) else value
            have = source.get(field)
            return value in have if isinstance(have, list) else have == value
        if kind == "terms":
            ((field, values),) = spec.items()
            have = source.get(field)
            have = have if isinstance(have, list) else [have]
            return any(v in have for v in values)
        if kind == "ids":
            return doc_id in spec["values"]
        if kind == "match_all":
            return True
        if kind == "bool":
            unknown = set(spec) - {"filter", "must", "must_not", "should"}
            if unknown:
                raise ApiError(400, "parsing_exception", f"unknown bool clauses {sorted(unknown)}")
            listify = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
            return all(
                self.matches(doc_id, source, c) for c in listify(spec.get("filter", [])) + listify(spec.get("must", []))
            ) and not any(self.matches(doc_id, source, c) for c in listify(spec.get("must_not", [])))
        raise ApiError(400, "parsing_exception", f"unknown query [{kind}]")

    def search(self, index: Index, body: dict) -> dict:
        size = body.get("size", 10)
        query = body.get("query", {"match_all": {}})
        docs = index.docs
        if "aggs" in body:
            ((name, agg),) = body["aggs"].items()
            field = agg["terms"]["field"]
            counts: dict = {}
            for source in docs.values():
                if source.get(field) is not None:
                    counts[source[field]] = counts.get(source[field], 0) + 1
            buckets = [{"key": key, "doc_count": n} for key, n in sorted(counts.items())]
            return {"hits": {"total": {"value": len(docs)}, "hits": []}, "aggregations": {name: {"buckets": buckets}}}
        if "knn" in query:
            ((field, spec),) = query["knn"].items()
            if field != index.vector_field:
                raise ApiError(400, "query_shard_exception", f"field [{field}] is not knn_vector type")
            if "k" not in spec or "vector" not in spec:
                raise ApiError(400, "parsing_exception", "[knn] requires k and vector")
            unknown = set(spec) - {"vector", "k", "filter"}
            if unknown:
                raise ApiError(400, "parsing_exception", f"[knn] unknown fields {sorted(unknown)}")
            xq = np.asarray(spec["vector"], dtype=np.float64)
            if xq.shape != (index.dimension,):
                raise ApiError(400, "illegal_argument_exception", "query vector has wrong dimension")
            candidates = [
                (doc_id, src)
                for doc_id, src in docs.items()
                if "filter" not in spec or self.matches(doc_id, src, spec["filter"])
            ]
            scored = []
            for doc_id, src in candidates:
                xb = np.asarray(src[index.vector_field], dtype=np.float64)
                cos = float(xq @ xb / (np.linalg.norm(xq) * np.linalg.norm(xb)))
                scored.append(((1.0 + cos) / 2.0, doc_id, src))
            scored.sort(key=lambda t: -t[0])
            scored = scored[: spec["k"]][:size]
        else:
            hits = [(1.0, doc_id, src) for doc_id, src in docs.items() if self.matches(doc_id, src, query)]
            if "sort" in body:
                ((field, _order),) = body["sort"][0].items()
                hits.sort(key=lambda t: t[2].get(field))
                if "search_after" in body:
                    hits = [t for t in hits if t[2].get(field) > body["search_after"][0]]
                scored = [(None, doc_id, src) for _, doc_id, src in hits][:size]
            else:
                scored = hits[:size]
        excludes = set(body.get("_source", {}).get("excludes", [])) if isinstance(body.get("_source"), dict) else set()
        out = []
        for score, doc_id, src in scored:
            hit = {
                "_index": index.name,
                "_id": doc_id,
                "_score": score,
                "_source": {k: v for k, v in src.items() if k not in excludes},
            }
            if "sort" in body:
                ((field, _),) = body["sort"][0].items()
                hit["sort"] = [src.get(field)]
            out.append(hit)
        return {"took": 1, "hits": {"total": {"value": len(out)}, "hits": out}}


class Handler(BaseHTTPRequestHandler):
    cluster: Cluster

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, doc: dict | None = None) -> None:
        body = json.dumps(doc if doc is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self) -> None:
        path = self.path.partition("?")[0]
        parts = [p for p in path.split("/") if p]
        c = self.cluster
        c.requests.append((self.command, path))
        raw = self._body()
        body = json.loads(raw) if raw and not path.endswith("_bulk") else {}
        with c.lock:
            m = self.command
            if not parts:
                return self._send(200, {"version": {"number": "2.18.0", "distribution": "opensearch"}})
            if parts == ["_bulk"] or (len(parts) == 2 and parts[1] == "_bulk"):
                return self._send(200, c.bulk(parts[0] if len(parts) == 2 else None, raw))
            if parts[0] == "_alias" and len(parts) == 2 and m in ("GET", "HEAD"):
                name = parts[1]
                if name not in c.aliases:
                    return self._send(404, {"error": f"alias [{name}] missing", "status": 404})
                return self._send(200, {c.aliases[name]: {"aliases": {name: {}}}})
            if parts == ["_aliases"] and m == "POST":
                for action in body["actions"]:
                    ((op, spec),) = action.items()
                    if spec["index"] not in c.indices:
                        raise ApiError(404, "index_not_found_exception", f"no such index [{spec['index']}]")
                    if op == "add":
                        c.aliases[spec["alias"]] = spec["index"]
                    elif op == "remove" and c.aliases.get(spec["alias"]) == spec["index"]:
                        del c.aliases[spec["alias"]]
                return self._send(200, {"acknowledged": True})
            name = parts[0]
            if len(parts) == 1 and m == "PUT":
                if not re.fullmatch(r"[a-z0-9][a-z0-9_\-.]*", name):
                    raise ApiError(400, "invalid_index_name_exception", f"invalid index name [{name}]")
                if name in c.indices or name in c.aliases:
                    raise ApiError(400, "resource_already_exists_exception", f"index [{name}] already exists")
                validate_index_body(body)
                c.indices[name] = Index(name, body)
                return self._send(200, {"acknowledged": True, "index": name})
            if len(parts) == 1 and m in ("HEAD", "GET"):
                index = c.resolve(name)
                return self._send(200, {index.name: index.body})
            index = c.resolve(name)
            op = parts[1]
            if op == "_mapping":
                return self._send(200, {index.name: {"mappings": index.body["mappings"]}})
            if op == "_refresh":
                index.refresh()
                return self._send(200, {"_shards": {"failed": 0}})
            if op == "_count":
                return self._send(200, {"count": len(index.docs)})
            if op == "_mget":
                docs = [{"_id": i, "found": index.visible(i) is not None} for i in body["ids"]]
                return self._send(200, {"docs": docs})
            if op == "_search":
                return self._send(200, c.search(index, body))
            if op == "_doc" and len(parts) == 3:
                doc_id = parts[2]
                if m == "GET":
                    source = index.visible(doc_id)
                    if source is None:
                        return self._send(404, {"_id": doc_id, "found": False})
                    return self._send(200, {"_id": doc_id, "found": True, "_source": source})
                if m == "DELETE":
                    if index.visible(doc_id) is None:
                        return self._send(404, {"_id": doc_id, "result": "not_found"})
                    index.pending[doc_id] = None
                    return self._send(200, {"_id": doc_id, "result": "deleted"})
                if m in ("PUT", "POST"):
                    c.put_doc(index, doc_id, body)
                    return self._send(201, {"_id": doc_id, "result": "created"})
            raise ApiError(405, "method_not_allowed", f"{m} {path} is not part of the subset")

    def _handle(self) -> None:
        try:
            self._route()
        except ApiError as exc:
            self._send(exc.status, {"error": {"type": exc.kind, "reason": exc.reason}, "status": exc.status})

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class OpenSearchDouble:
    """Start with `with OpenSearchDouble() as double: double.url`."""

    def __init__(self) -> None:
        self.cluster = Cluster()
        handler = type("BoundHandler", (Handler,), {"cluster": self.cluster})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OpenSearchDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
