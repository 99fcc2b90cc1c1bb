"""ml-commons on a node: the settings that let it call a model server of ours on loopback.

ml-commons refuses, by default, to run a model on a node without the `ml` role, to call an
endpoint that its trusted list does not match, and to call a private address (127.0.0.1 is one).
A local node gets these in its opensearch.yml; a site's own cluster sets them once with
`PUT _cluster/settings` (docs/opensearch.md), narrowed to its own model servers' addresses.
"""

from __future__ import annotations

import json

ML_FILE = "ml-commons"  # in a node's home: the node was made with ml-commons (it keeps it)

# TorchServe's inference API on loopback, any port: POST /predictions/<model>
LOOPBACK_ENDPOINTS = r"^https?://(127\.0\.0\.1|localhost)(:[0-9]+)?/predictions/[A-Za-z0-9_.-]+$"


def settings(endpoints: str = LOOPBACK_ENDPOINTS) -> dict[str, object]:
    """The ml-commons settings a remote model on `endpoints` needs (node or cluster settings alike)."""
    return {
        # no dedicated ML node: a remote model runs on data nodes anyway, this covers local models too
        "plugins.ml_commons.only_run_on_ml_node": False,
        # connectors may only call URLs that match one of these
        "plugins.ml_commons.trusted_connector_endpoints_regex": [endpoints],
        # 127.0.0.1 and other private addresses are refused without it
        "plugins.ml_commons.connector.private_ip_enabled": True,
    }


def node_settings(endpoints: str = LOOPBACK_ENDPOINTS) -> str:
    """The settings as opensearch.yml lines (JSON values are valid YAML)."""
    lines = [f"{name}: {json.dumps(value)}" for name, value in settings(endpoints).items()]
    return "\n# ml-commons: a model server on loopback (lookalike opensearch start --ml)\n" + "\n".join(lines) + "\n"
