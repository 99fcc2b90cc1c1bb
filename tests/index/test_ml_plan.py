"""What `lookalike opensearch connect` would send, checked without a cluster (fast tier); the real
node runs it in test_ml_connect.py. Also the ml-commons node settings and the install refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from lookalike.cli.main import main
from lookalike.errors import NodeError, SettingsError
from lookalike.index.opensearch_index import index_body
from lookalike.ml_connect.connect import Outcome, index_body_for, render, requests
from lookalike.ml_connect.plan import MASK, NO_KEY, Plan
from lookalike.opensearch_node import install, ml
from lookalike.settings import Settings

URL = "http://127.0.0.1:8080"


def test_the_key_is_a_credential_referenced_by_the_header_and_masked_on_request():
    plan = Plan(URL, "efficientnet_lite0", token="s3cret")
    body = plan.connector()
    action = body["actions"][0]
    assert body["credential"] == {"torchserve_key": "s3cret"}
    assert action["headers"]["Authorization"] == "Bearer ${credential.torchserve_key}"
    assert "s3cret" not in json.dumps(action)
    assert action["url"] == f"{URL}/predictions/efficientnet_lite0"
    assert json.loads(action["request_body"].replace("${parameters.image}", "QUJD")) == {"image": "QUJD"}
    masked = plan.connector(masked=True)
    assert masked["credential"]["torchserve_key"] == MASK and "s3cret" not in json.dumps(masked)
    # no key: no header; a placeholder credential, as ml-commons 2.19 refuses a connector without one
    assert Plan(URL, "efficientnet_lite0").connector()["credential"] == {"torchserve_key": NO_KEY}
    assert "Authorization" not in Plan(URL, "efficientnet_lite0").connector()["actions"][0]["headers"]


def test_the_fingerprint_follows_the_url_and_the_key_only():
    plan = Plan(URL, "efficientnet_lite0", token="a")
    assert plan.fingerprint() == Plan(URL, "efficientnet_lite0", token="a", ingest_pipeline="x").fingerprint()
    assert plan.fingerprint() != Plan(URL, "efficientnet_lite0", token="b").fingerprint()
    assert plan.fingerprint() != Plan("http://10.0.0.5:8080", "efficientnet_lite0", token="a").fingerprint()
    assert plan.fingerprint() in plan.connector()["description"] and plan.fingerprint() in plan.model_body("c")[
        "description"]  # fmt: skip


def test_pipelines_map_the_image_in_and_the_vector_out():
    plan = Plan(URL, "resnet50", image_field="photo", vector_field="embedding_v")
    ingest = plan.ingest_body("M1")["processors"][0]["ml_inference"]
    assert ingest == {"model_id": "M1", "input_map": [{"photo": "photo"}], "output_map": [{"embedding_v": "embedding"}]}
    search = plan.search_body("M1")["request_processors"][0]["ml_inference"]
    assert search["input_map"] == [{"photo": "ext.ml_inference.photo"}]
    assert search["output_map"] == [{"embedding_v": "embedding"}] and search["ignore_missing"] is True
    query = plan.query("QUJD", k=5, filters={"term": {"category": "shoes"}})
    knn = query["query"]["template"]["knn"]["embedding_v"]
    assert knn == {"vector": "${embedding_v}", "k": 5, "filter": {"term": {"category": "shoes"}}}
    assert query["ext"] == {"ml_inference": {"photo": "QUJD"}}


@pytest.mark.parametrize(("url", "field"), [("http://a:1,http://b:1", "image"), ("127.0.0.1:8080", "image"),
                                            (URL, "ext.image"), (URL, "${x}")])  # fmt: skip
def test_a_plan_that_cannot_work_is_refused(url, field):
    with pytest.raises(SettingsError):
        Plan(url, "efficientnet_lite0", image_field=field)


def test_the_index_keeps_our_mapping_and_keeps_the_image_out_of_source():
    plan = Plan(URL, "efficientnet_lite0", vector_field="v")
    body = index_body_for(plan, index_body("efficientnet_lite0", 1280, Settings(), "lucene"))
    assert body["settings"]["index"]["default_pipeline"] == "lookalike-image"
    assert body["mappings"]["_source"] == {"excludes": ["image"]}
    assert body["mappings"]["properties"]["image"] == {"type": "binary"}
    vector = body["mappings"]["properties"]["v"]
    assert vector["type"] == "knn_vector" and vector["dimension"] == 1280 and vector["space_type"] == "cosinesimil"
    assert "vector" not in body["mappings"]["properties"]


def test_the_dry_run_lists_every_write_in_order():
    steps = requests(Plan(URL, "efficientnet_lite0", token="k"), {"mappings": {}}, "shop")
    assert [f"{method} {path}" for method, path, _ in steps] == [
        "POST /_plugins/_ml/connectors/_create", "POST /_plugins/_ml/models/_register",
        "POST /_plugins/_ml/models/<model_id>/_deploy", "PUT /_ingest/pipeline/lookalike-image",
        "PUT /_search/pipeline/lookalike-image-search", "PUT /shop"]  # fmt: skip
    assert "<connector_id>" in render(steps) and '"k"' not in render(steps)


def test_cli_dry_run_needs_no_server_and_prints_no_key(monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_TS_TOKEN", "very-secret-key")
    monkeypatch.setenv("LOOKALIKE_TS_URL", "http://127.0.0.1:9")  # nothing listens there
    assert main(["opensearch", "connect", "--dry-run", "--model", "resnet50", "--image-field", "photo"]) == 0
    printed = capsys.readouterr().out
    assert "very-secret-key" not in printed
    assert "/predictions/resnet50" in printed and "ext.ml_inference.photo" in printed


def test_outcome_says_whether_anything_changed():
    assert not Outcome(steps=["connector x (1): unchanged", "index shop: unchanged"]).changed
    assert Outcome(steps=["connector x (1): unchanged", "ingest pipeline p: updated"]).changed


def test_node_settings_trust_loopback_model_servers_only():
    values = yaml.safe_load(ml.node_settings())
    assert values["plugins.ml_commons.only_run_on_ml_node"] is False
    assert values["plugins.ml_commons.connector.private_ip_enabled"] is True
    (pattern,) = values["plugins.ml_commons.trusted_connector_endpoints_regex"]
    assert re.match(pattern, "http://127.0.0.1:8080/predictions/efficientnet_lite0")
    assert re.match(pattern, "http://localhost:38211/predictions/lite0-full")
    assert not re.match(pattern, "http://10.0.0.7:8080/predictions/efficientnet_lite0")
    assert not re.match(pattern, "http://127.0.0.1:8081/models")  # the management API is not a predict endpoint


def test_ml_pins_are_refused_where_they_cannot_work(tmp_path: Path):
    """(That a plain node never fetches them: tests/opensearch_node/test_maven.py.)"""
    with pytest.raises(NodeError, match=r"no ml-commons is pinned for OpenSearch 3\.5\.0"):
        install.install_node(tmp_path, cache=tmp_path, version="3.5.0", ml=True)
    with pytest.raises(NodeError, match="not both"):
        install.install_node(tmp_path, cache=tmp_path, security=True, ml=True)
