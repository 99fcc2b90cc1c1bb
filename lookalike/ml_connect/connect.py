"""`lookalike opensearch connect`: make the cluster's ml-commons call our TorchServe, idempotently.

Each step finds what is already there before it writes: a connector and a model of our name whose
description carries the plan's fingerprint are reused (a deployed model stays deployed), pipelines
whose bodies already equal ours are left alone. A changed URL or key makes a new connector and
model; once the pipelines point at them, the old ones of that name are undeployed and deleted.
Then one bundled photo goes through the model and must come back as the vector TorchServe gives us
directly, so a connect that returns 0 has been seen to work end to end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, TransportError

from lookalike.errors import LookalikeError
from lookalike.ml_connect.plan import Plan

ML = "/_plugins/_ml"
MIN_AGREEMENT = 0.9999  # cosine between the vector through OpenSearch and the one from TorchServe


class ConnectError(LookalikeError, status=502, exit_code=2):
    """OpenSearch refused a step of connect; the reason says which and what to change."""


@dataclass
class Outcome:
    connector_id: str = ""
    model_id: str = ""
    steps: list[str] = field(default_factory=list)  # one line per resource: created / unchanged / replaced
    agreement: float | None = None  # cosine of the check photo's two vectors

    @property
    def changed(self) -> bool:
        return any(not line.endswith(": unchanged") for line in self.steps)


Request = tuple[str, str, dict | None]


def requests(plan: Plan, index: dict | None = None, index_name: str | None = None) -> list[Request]:
    """Every write connect makes on an empty cluster, in order, with the key masked (--dry-run).
    Ids that OpenSearch assigns appear as <connector_id> and <model_id>."""
    steps: list[Request] = [
        ("POST", f"{ML}/connectors/_create", plan.connector(masked=True)),
        ("POST", f"{ML}/models/_register", plan.model_body("<connector_id>")),
        ("POST", f"{ML}/models/<model_id>/_deploy", None),
        ("PUT", f"/_ingest/pipeline/{plan.ingest_pipeline}", plan.ingest_body("<model_id>")),
        ("PUT", f"/_search/pipeline/{plan.search_pipeline}", plan.search_body("<model_id>")),
    ]
    if index is not None and index_name:
        steps.append(("PUT", f"/{index_name}", index))
    return steps


def render(steps: list[Request]) -> str:
    return "\n\n".join(f"{method} {path}\n{json.dumps(body, indent=2)}" if body is not None else f"{method} {path}"
                       for method, path, body in steps)  # fmt: skip


class Connector:
    """Applies a Plan to one cluster through an opensearch-py client."""

    def __init__(self, client: OpenSearch, plan: Plan, say: Callable[[str], None] = print,
                 deploy_timeout: float = 60.0) -> None:  # fmt: skip
        self.client, self.plan, self.say, self.deploy_timeout = client, plan, say, deploy_timeout

    # -- requests ---------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: dict | None = None, what: str = "") -> Any:
        try:
            return self.client.transport.perform_request(method, path, body=body)
        except TransportError as exc:
            raise ConnectError(f"{what or f'{method} {path}'} failed: {_reason(exc)}{_hint(exc)}") from exc

    def _found(self, kind: str) -> list[dict]:
        """Our connectors or models (by name), newest first, with their ids."""
        body = {"size": 100, "query": {"term": {"name.keyword": self.plan.resource_name}},
                "sort": [{"created_time": {"order": "desc"}}]}  # fmt: skip
        try:
            answer = self.client.transport.perform_request("POST", f"{ML}/{kind}/_search", body=body)
        except TransportError as exc:
            if exc.status_code == 404:  # ml-commons makes its index on the first write
                return []
            raise ConnectError(f"searching ml-commons' {kind} failed: {_reason(exc)}{_hint(exc)}") from exc
        return [{"id": hit["_id"], **hit["_source"]} for hit in answer.get("hits", {}).get("hits", [])]

    # -- steps ----------------------------------------------------------------------------------
    def apply(self) -> Outcome:
        outcome = Outcome()
        mark = f"fingerprint {self.plan.fingerprint()}"
        connectors = self._found("connectors")
        ours = next((c for c in connectors if mark in c.get("description", "")), None)
        if ours:
            outcome.connector_id = ours["id"]
            outcome.steps.append(f"connector {self.plan.resource_name} ({ours['id']}): unchanged")
        else:
            made = self.call("POST", f"{ML}/connectors/_create", self.plan.connector(), "creating the connector")
            outcome.connector_id = made["connector_id"]
            outcome.steps.append(f"connector {self.plan.resource_name} ({outcome.connector_id}): created")
        models = self._found("models")
        model = next((m for m in models if m.get("connector_id") == outcome.connector_id), None)
        if model:
            outcome.model_id = model["id"]
            if model.get("model_state") == "DEPLOYED":
                outcome.steps.append(f"model {self.plan.resource_name} ({model['id']}): unchanged")
            else:
                self._deploy(model["id"])
                outcome.steps.append(f"model {self.plan.resource_name} ({model['id']}): deployed")
        else:
            made = self.call("POST", f"{ML}/models/_register", self.plan.model_body(outcome.connector_id),
                             "registering the model")  # fmt: skip
            outcome.model_id = made["model_id"]
            self._deploy(outcome.model_id)
            outcome.steps.append(f"model {self.plan.resource_name} ({outcome.model_id}): created and deployed")
        self._pipeline("_ingest", self.plan.ingest_pipeline, self.plan.ingest_body(outcome.model_id), outcome)
        self._pipeline("_search", self.plan.search_pipeline, self.plan.search_body(outcome.model_id), outcome)
        for old in models:
            if old["id"] != outcome.model_id:
                self._retire_model(old["id"])
                outcome.steps.append(f"old model {old['id']}: undeployed and deleted")
        for old in connectors:
            if old["id"] != outcome.connector_id:
                self.call("DELETE", f"{ML}/connectors/{old['id']}", what=f"deleting the old connector {old['id']}")
                outcome.steps.append(f"old connector {old['id']}: deleted")
        return outcome

    def _deploy(self, model_id: str) -> None:
        self.say(f"deploying model {model_id} ...")
        self.call("POST", f"{ML}/models/{model_id}/_deploy", what=f"deploying model {model_id}")
        deadline = time.monotonic() + self.deploy_timeout
        while True:
            state = self.call("GET", f"{ML}/models/{model_id}", what=f"reading model {model_id}").get("model_state")
            if state == "DEPLOYED":
                return
            if state in ("DEPLOY_FAILED",) or time.monotonic() > deadline:
                raise ConnectError(f"model {model_id} did not deploy (state {state}); see the node's log")
            time.sleep(0.5)

    def _retire_model(self, model_id: str) -> None:
        self.call("POST", f"{ML}/models/{model_id}/_undeploy", what=f"undeploying the old model {model_id}")
        self.call("DELETE", f"{ML}/models/{model_id}", what=f"deleting the old model {model_id}")

    def _pipeline(self, kind: str, name: str, body: dict, outcome: Outcome) -> None:
        label = "ingest pipeline" if kind == "_ingest" else "search pipeline"
        try:
            current = self.client.transport.perform_request("GET", f"/{kind}/pipeline/{name}").get(name)
        except TransportError as exc:
            if exc.status_code != 404:
                raise ConnectError(f"reading the {label} {name} failed: {_reason(exc)}") from exc
            current = None
        if current is not None and _same(current, body):
            outcome.steps.append(f"{label} {name}: unchanged")
            return
        self.call("PUT", f"/{kind}/pipeline/{name}", body, f"writing the {label} {name}")
        outcome.steps.append(f"{label} {name}: {'updated' if current is not None else 'created'}")

    def check(self, outcome: Outcome, image_b64: str, expected: np.ndarray) -> float:
        """The model's vector for one photo, through OpenSearch, against TorchServe's own: cosine."""
        answer = self.call("POST", f"{ML}/models/{outcome.model_id}/_predict",
                           {"parameters": {self.plan.image_field: image_b64}},
                           "embedding a check photo through the connector")  # fmt: skip
        try:
            got = np.asarray(answer["inference_results"][0]["output"][0]["dataAsMap"]["embedding"], dtype=np.float32)
        except (KeyError, IndexError, TypeError) as exc:
            raise ConnectError(f"the model answered without an embedding: {json.dumps(answer)[:300]}") from exc
        if got.shape != expected.shape:
            raise ConnectError(f"the model gave {got.shape[0]} values through OpenSearch, TorchServe "
                               f"{expected.shape[0]}")  # fmt: skip
        cosine = float(got @ expected / (np.linalg.norm(got) * np.linalg.norm(expected) + 1e-12))
        outcome.agreement = cosine
        if cosine < MIN_AGREEMENT:
            raise ConnectError(f"the vector through OpenSearch differs from TorchServe's (cosine {cosine:.6f} < "
                               f"{MIN_AGREEMENT})")  # fmt: skip
        return cosine


def _same(current: dict, wanted: dict) -> bool:
    """A pipeline as OpenSearch returns it equals ours (it gives back what it was given)."""
    return json.loads(json.dumps(current, sort_keys=True)) == json.loads(json.dumps(wanted, sort_keys=True))


def _reason(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if isinstance(error, dict):
        return f"{exc.status_code} {error.get('reason') or error.get('type')}"
    return f"{exc.status_code} {error or exc.error}"


def _hint(exc: TransportError) -> str:
    text = str(exc.info)
    if "trusted connector endpoint" in text or "not matching the trusted" in text:
        return (
            " (the cluster's plugins.ml_commons.trusted_connector_endpoints_regex must match the model server's "
            "URL: docs/opensearch.md, Image search inside OpenSearch)"
        )
    if "no handler found" in text:
        return " (is ml-commons installed? lookalike opensearch start --ml)"
    if "private ip" in text.lower():
        return " (set plugins.ml_commons.connector.private_ip_enabled: true for a model server on a private address)"
    return ""


def index_body_for(plan: Plan, base: dict) -> dict:
    """Our index body (opensearch_index.index_body) with what the pipeline's images need."""
    extra = plan.index_additions()
    body = json.loads(json.dumps(base))
    body["settings"]["index"].update(extra["settings"]["index"])
    body["mappings"].update({"_source": extra["mappings"]["_source"]})
    properties = body["mappings"]["properties"]
    properties[plan.vector_field] = properties.pop("vector")
    properties.update(extra["mappings"]["properties"])
    body["mappings"]["_meta"]["pipeline"] = plan.ingest_pipeline
    return body


def ensure_index(connector: Connector, name: str, body: dict, outcome: Outcome) -> None:
    """Create index `name` with `body` unless it exists; an existing one must hold vectors of the
    same dimension in the plan's vector field (nothing of it is changed)."""
    client, plan = connector.client, connector.plan
    if not client.indices.exists(index=name):
        connector.call("PUT", f"/{name}", body, f"creating the index {name}")
        outcome.steps.append(f"index {name}: created (default pipeline {plan.ingest_pipeline})")
        return
    mapping = next(iter(client.indices.get_mapping(index=name).values()))["mappings"]
    field = mapping.get("properties", {}).get(plan.vector_field, {})
    want = body["mappings"]["properties"][plan.vector_field]["dimension"]
    if field.get("type") != "knn_vector" or field.get("dimension") != want:
        raise ConnectError(f"index {name} exists but its field {plan.vector_field!r} is not a knn_vector of dimension "
                           f"{want} ({field or 'missing'}): choose another --create-index name")  # fmt: skip
    outcome.steps.append(f"index {name}: unchanged")
