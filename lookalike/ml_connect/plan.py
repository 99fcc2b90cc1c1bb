"""What `lookalike opensearch connect` asks OpenSearch for: the request bodies, built from a Plan.

    connector       ml-commons' HTTP connector to TorchServe's POST /predictions/<model>: the image
                    goes as {"image": "<base64>"} (the handler's JSON input), the answer comes back
                    as a list (X-Lookalike-Encoding: list); the bearer key is a connector credential
                    (ml-commons keeps it encrypted and never shows it again), referenced in the
                    Authorization header as ${credential.torchserve_key}
    model           a remote model on that connector (function_name remote)
    ingest pipeline an ml_inference processor: the document's image field (base64) in, the
                    answer's `embedding` out into the knn_vector field
    search pipeline an ml_inference request processor: ext.ml_inference.<image field> in, the
                    vector out as ${<vector field>} for a `template` query (OpenSearch 2.19+), so a
                    site's own k-NN query, filters and aggregations stay as it writes them
    index           (optional) our mapping, the image field kept out of _source, the ingest pipeline
                    as the index's default

Nothing here talks to a cluster (connect.py does); the fast tier tests these bodies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lookalike.errors import SettingsError

CREDENTIAL = "torchserve_key"
MASK = "<TorchServe inference key>"  # what --dry-run prints instead of the key
NO_KEY = "none: TorchServe runs without token authorisation"


@dataclass(frozen=True)
class Plan:
    model_server_url: str  # TorchServe's inference address as the OpenSearch nodes reach it
    model: str  # TorchServe model name
    token: str | None = None  # TorchServe's inference key (token authorisation on), else None
    name: str = ""  # the connector's and the model's name ("" -> lookalike-<model>)
    ingest_pipeline: str = "lookalike-image"
    search_pipeline: str = "lookalike-image-search"
    image_field: str = "image"  # the document field (ingest) / ext.ml_inference key (search) with the base64
    vector_field: str = "vector"  # the knn_vector field the ingest pipeline fills; the template's placeholder

    def __post_init__(self) -> None:
        if "," in self.model_server_url:
            raise SettingsError(
                f"a connector calls one URL, not a list ({self.model_server_url}): give the address "
                "of one TorchServe or of the load balancer in front of them (--model-server-url)"
            )
        if not self.model_server_url.startswith(("http://", "https://")):
            raise SettingsError(f"the model server URL must start with http:// or https://: {self.model_server_url}")
        for label, value in (("image field", self.image_field), ("vector field", self.vector_field)):
            if not value or any(ch in value for ch in " .${}\"'"):
                raise SettingsError(f"the {label} must be a plain field name, not {value!r}")

    @property
    def resource_name(self) -> str:
        return self.name or f"lookalike-{self.model}"

    @property
    def endpoint(self) -> str:
        return f"{self.model_server_url.rstrip('/')}/predictions/{self.model}"

    def connector(self, masked: bool = False) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "X-Lookalike-Encoding": "list"}
        body: dict[str, Any] = {
            "name": self.resource_name,
            "description": "",  # set below: it carries the fingerprint
            "version": "1",
            "protocol": "http",
            "parameters": {},
            "actions": [{
                "action_type": "predict",
                "method": "POST",
                "url": self.endpoint,
                "headers": headers,
                "request_body": json.dumps({"image": f"${{parameters.{self.image_field}}}"}),
            }],
        }  # fmt: skip
        if self.token:
            headers["Authorization"] = f"Bearer ${{credential.{CREDENTIAL}}}"
            body["credential"] = {CREDENTIAL: MASK if masked else self.token}
        else:  # ml-commons 2.19 refuses a connector without one; no header refers to it
            body["credential"] = {CREDENTIAL: NO_KEY}
        body["description"] = f"Lookalike: TorchServe {self.endpoint} (fingerprint {self.fingerprint()})"
        return body

    def fingerprint(self) -> str:
        """What makes a connector ours and current: its URL, headers, body and key (as a digest).
        A changed key or URL gives a new fingerprint, so connect replaces the connector."""
        digest = hashlib.sha256(self.token.encode()).hexdigest() if self.token else ""
        shape = {"url": self.endpoint, "image": self.image_field, "key": digest, "version": 1}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    def model_body(self, connector_id: str) -> dict[str, Any]:
        return {
            "name": self.resource_name,
            "function_name": "remote",
            "connector_id": connector_id,
            "description": f"Lookalike: image embeddings from TorchServe model {self.model} "
                           f"(fingerprint {self.fingerprint()})",
        }  # fmt: skip

    def ingest_body(self, model_id: str) -> dict[str, Any]:
        return {
            "description": f"Lookalike: embeds the base64 image in `{self.image_field}` into `{self.vector_field}` "
                           f"with TorchServe model {self.model}",
            "processors": [{
                "ml_inference": {
                    "model_id": model_id,
                    "input_map": [{self.image_field: self.image_field}],
                    "output_map": [{self.vector_field: "embedding"}],
                },
            }],
        }  # fmt: skip

    def search_body(self, model_id: str) -> dict[str, Any]:
        return {
            "description": f"Lookalike: the base64 image in ext.ml_inference.{self.image_field} becomes "
                           f"${{{self.vector_field}}} in a template query",
            "request_processors": [{
                "ml_inference": {
                    "model_id": model_id,
                    "input_map": [{self.image_field: f"ext.ml_inference.{self.image_field}"}],
                    "output_map": [{self.vector_field: "embedding"}],
                    # a search without an image passes through unchanged
                    "ignore_missing": True,
                },
            }],
        }  # fmt: skip

    def index_additions(self) -> dict[str, Any]:
        """What an index that takes images through the pipeline needs besides our mapping: the image
        field mapped as binary (never indexed) and kept out of _source, the pipeline as its default."""
        return {
            "settings": {"index": {"default_pipeline": self.ingest_pipeline}},
            "mappings": {"_source": {"excludes": [self.image_field]},
                         "properties": {self.image_field: {"type": "binary"}}},
        }  # fmt: skip

    def query(self, image_b64: str, k: int = 10, filters: dict | None = None) -> dict[str, Any]:
        """A search-by-image request body for the search pipeline (what the docs show with curl)."""
        knn: dict[str, Any] = {"vector": f"${{{self.vector_field}}}", "k": k}
        if filters:
            knn["filter"] = filters
        return {"size": k, "query": {"template": {"knn": {self.vector_field: knn}}},
                "ext": {"ml_inference": {self.image_field: image_b64}}}  # fmt: skip
