"""Amazon OpenSearch Service: requests signed with SigV4 by opensearch-py's own signer.

AWS cannot be reached from here, so a recording HTTP server on loopback stands in for the domain
(a stand-in, fast tier): it checks that every request arrives signed for the configured region
and service, and answers a 403 as AWS does, to check the error we make of it. Untested against
the real service (docs/opensearch.md says so).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lookalike.errors import IndexUnavailable, SettingsError
from lookalike.index.opensearch_client import connect
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.settings import Settings

KEY_ID = "AKIDLOOKALIKETEST"
INFO = {"name": "aws", "cluster_name": "123:domain", "version": {"number": "2.19.0", "distribution": "opensearch"}}


class Domain:
    """Records each request's headers; answers GET / with cluster info, or everything with 403."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.refuse = False
        domain = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                domain.seen.append({key.lower(): value for key, value in self.headers.items()})
                status, body = (403, {"message": "The security token included in the request is invalid."}) \
                    if domain.refuse else (200, INFO)  # fmt: skip
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def domain(monkeypatch) -> Iterator[Domain]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-for-tests")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    made = Domain()
    threading.Thread(target=made.server.serve_forever, daemon=True).start()
    yield made
    made.server.shutdown()
    made.server.server_close()


def signed(domain: Domain, **more) -> Settings:
    return Settings(opensearch_url=domain.url, opensearch_auth="sigv4", opensearch_region="eu-west-1", alias="shop",
                    **more)  # fmt: skip


def test_every_request_is_signed_for_the_region_and_service(domain):
    assert connect(signed(domain)).info()["version"]["number"] == "2.19.0"
    connect(signed(domain, opensearch_service="aoss")).info()
    first, second = domain.seen
    for headers, service in ((first, "es"), (second, "aoss")):
        authorization = headers["authorization"]
        assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
        assert f"/eu-west-1/{service}/aws4_request" in authorization and "Signature=" in authorization
        assert headers["x-amz-date"] and "secret-for-tests" not in json.dumps(headers)


def test_a_refused_signature_is_a_clear_error_naming_region_and_policy(domain):
    domain.refuse = True
    with pytest.raises(IndexUnavailable) as refused:
        OpenSearchIndex(signed(domain), "m", 8)
    reason = refused.value.reason
    assert "SigV4, region eu-west-1" in reason and "security token included in the request is invalid" in reason
    assert "access policy" in reason and "secret-for-tests" not in reason


def test_sigv4_without_a_region_or_credentials_says_what_is_missing(domain, monkeypatch, tmp_path):
    with pytest.raises(SettingsError, match="LOOKALIKE_OPENSEARCH_REGION"):
        Settings(opensearch_url=domain.url, opensearch_auth="sigv4").validate()
    with pytest.raises(SettingsError, match="basic or sigv4"):
        Settings(opensearch_auth="kerberos").validate()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to ask for
    with pytest.raises(SettingsError, match="no AWS credentials"):
        connect(signed(domain))
