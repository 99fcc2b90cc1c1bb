"""Against a secured node (TLS, users, roles), what goes wrong says so clearly: a wrong password, an
untrusted certificate, a user without rights on the index. Each on the real secured node; the
password never shows in an error, a log line or a repr.

The rest of the real-node suite runs against the secured node as the `lookalike` user too (the
`opensearch-secured` backend and the `secured` node of tests/conftest.py's opensearch_url).
"""

from __future__ import annotations

import logging
import os
import ssl
import uuid
from pathlib import Path

import httpx
import pytest
import requests

from lookalike import stack
from lookalike.api import process
from lookalike.cli.main import main
from lookalike.errors import IndexUnavailable
from lookalike.index.opensearch_client import connect
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.opensearch_node import security
from tests.backends import drop_indices, opensearch_settings

LITE = "efficientnet_lite0"


@pytest.fixture
def secured(secured_opensearch_url) -> str:
    return secured_opensearch_url


def admin_call(url: str, method: str, path: str, body: dict | None = None) -> httpx.Response:
    """A request as the node's admin (the test node keeps its secrets beside its config)."""
    ca = os.environ["LOOKALIKE_OPENSEARCH_CA_FILE"]
    made = security.Secrets.load(Path(ca.split("/config/")[0]))
    assert made is not None
    return httpx.request(method, url + path, json=body, auth=(security.ADMIN, made.admin_password),
                         verify=ssl.create_default_context(cafile=ca), timeout=30)  # fmt: skip


def test_a_wrong_password_names_authentication_and_never_the_password(secured, standin, photos, tmp_path, capsys,
                                                                       caplog, monkeypatch):  # fmt: skip
    wrong = f"not-{uuid.uuid4().hex}"
    settings = opensearch_settings(secured, f"t-{uuid.uuid4().hex[:8]}", opensearch_password=wrong)
    assert wrong not in repr(settings)
    with caplog.at_level(logging.DEBUG), pytest.raises(IndexUnavailable) as refused:
        OpenSearchIndex(settings, LITE, 1280).count()
    assert "authentication" in refused.value.reason and "'lookalike'" in refused.value.reason
    assert wrong not in refused.value.reason and wrong not in caplog.text
    # the command line: its exit code and one line naming it
    monkeypatch.setenv("LOOKALIKE_OPENSEARCH_PASSWORD", wrong)
    code = main(["admin", "info", "--opensearch-url", secured, "--alias", settings.alias, "--ts-url",
                 standin.inference_url, "--model", LITE])  # fmt: skip
    err = capsys.readouterr().err
    assert code == IndexUnavailable.exit_code and "refused authentication" in err and wrong not in err
    # the API: 503 naming it
    with process.ApiThread(settings.replace(ts_url=standin.inference_url, model=LITE, thumb_dir=tmp_path)) as api:
        answer = requests.post(f"{api.url}/search", data=photos["coffee"], headers={"Content-Type": "image/jpeg"},
                               timeout=60)  # fmt: skip
        health = requests.get(f"{api.url}/healthz", timeout=60)
    assert answer.status_code == 503 and "authentication" in answer.text and wrong not in answer.text
    assert health.status_code == 503 and wrong not in health.text


def test_an_untrusted_certificate_is_named_with_the_setting_that_fixes_it(secured):
    settings = opensearch_settings(secured, f"t-{uuid.uuid4().hex[:8]}", opensearch_ca_file=None)
    with pytest.raises(IndexUnavailable) as untrusted:
        OpenSearchIndex(settings, LITE, 1280).count()
    assert "not trusted" in untrusted.value.reason and "LOOKALIKE_OPENSEARCH_CA_FILE" in untrusted.value.reason
    assert "certificate" in untrusted.value.reason


def test_a_user_without_rights_on_the_index_is_told_which_permission(secured, standin, photos, tmp_path):
    """A second user whose role covers other indices only: ingest and search are refused with the
    permission OpenSearch names, as a 503 at the API and an exit code at the command line."""
    name, password = f"outsider{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    role = {
        "cluster_permissions": ["cluster:monitor/main", "cluster:monitor/health"],
        "index_permissions": [{"index_patterns": ["elsewhere-*"], "allowed_actions": ["indices:data/read/*"]}],
    }
    assert admin_call(secured, "PUT", f"/_plugins/_security/api/roles/{name}", role).status_code in (200, 201)
    made = admin_call(secured, "PUT", f"/_plugins/_security/api/internalusers/{name}",
                      {"password": password, "opendistro_security_roles": [name]})  # fmt: skip
    assert made.status_code in (200, 201), made.text
    alias = f"t-{uuid.uuid4().hex[:8]}"
    owner = opensearch_settings(secured, alias, ts_url=standin.inference_url, model=LITE)
    try:
        stack.ingest(owner, stack.photo_items({"coffee": photos["coffee"]}, tmp_path / "photos", named=True))
        outsider = owner.replace(opensearch_user=name, opensearch_password=password)
        with pytest.raises(IndexUnavailable) as refused:
            OpenSearchIndex(outsider, LITE, 1280).count()
        assert "lacks permission indices:" in refused.value.reason and f"'{name}'" in refused.value.reason
        assert password not in refused.value.reason
    finally:
        drop_indices(secured, alias)
        admin_call(secured, "DELETE", f"/_plugins/_security/api/internalusers/{name}")
        admin_call(secured, "DELETE", f"/_plugins/_security/api/roles/{name}")


def test_the_lookalike_user_cannot_touch_other_indices_or_the_cluster(secured):
    """Least privilege, checked: the role allows our aliases' indices, not another index, cluster
    settings or the security API."""
    client = connect(opensearch_settings(secured, "t-unused"))
    users = "/_plugins/_security/api/internalusers"
    for attempt in (lambda: client.indices.create(index="someone-elses"),
                    lambda: client.cluster.put_settings(body={"transient": {"search.max_buckets": 100}}),
                    lambda: client.transport.perform_request("GET", users)):  # fmt: skip
        with pytest.raises(Exception) as refused:
            attempt()
        assert getattr(refused.value, "status_code", None) in (401, 403), refused.value
