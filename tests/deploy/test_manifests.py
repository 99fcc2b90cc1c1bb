"""deploy/kubernetes: valid against the Kubernetes schemas (offline, kubernetes-validate's copies),
and consistent with what the servers really serve: probe routes, ports, the metrics the autoscalers
read, grace periods that cover the drain. Fast tier."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from lookalike.api.app import create_app
from lookalike.serving.signal import Signal
from lookalike.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
VERSIONS = ("1.29.0", "1.33.0")  # an older and a recent cluster


def documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def containers(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc["spec"]["template"]["spec"] for _, doc in documents() if doc["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schema(version):
    checked = 0
    for name, doc in documents():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 7


def test_kustomization_lists_every_manifest():
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def test_probes_and_ports_are_the_ones_the_servers_serve():
    api_routes = set(create_app(Settings()).openapi()["paths"])
    gate = (ROOT / "lookalike" / "serving" / "gate.py").read_text()
    served = {"api": (api_routes, 8000), "model-server": ({"/live", "/ready", "/metrics"}, 8080)}
    for name, spec in containers("Deployment").items():
        routes, port = served[name]
        (container,) = spec["containers"]
        assert container["ports"][0]["containerPort"] == port
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container:
                path = container[probe]["httpGet"]["path"]
                assert path in routes, f"{name} {probe} asks {path}"
        if name == "model-server":
            assert all(f'"{path}"' in gate for path in ("/live", "/ready", "/metrics"))
        assert (ROOT / "deploy" / "containers" / f"{name}.Containerfile").read_text().count(f"EXPOSE {port}") == 1


def test_grace_periods_cover_the_drain():
    for name, spec in containers("Deployment").items():
        env = {item["name"]: item.get("value") for item in spec["containers"][0]["env"]}
        drain = float(env["LOOKALIKE_DRAIN_GRACE"]) + float(env["LOOKALIKE_DRAIN_TIMEOUT"])
        assert spec["terminationGracePeriodSeconds"] > drain, name


def test_autoscalers_read_metrics_the_servers_export():
    exported = {name for name, _, _ in Signal().gauges("lookalike_model") + Signal().gauges("lookalike_api")}
    hpa_metrics = [doc["spec"]["metrics"][0]["pods"]["metric"]["name"] for _, doc in documents()
                   if doc["kind"] == "HorizontalPodAutoscaler"]  # fmt: skip
    assert hpa_metrics and set(hpa_metrics) <= exported
    (adapter,) = [doc for _, doc in documents() if doc["kind"] == "ConfigMap"]
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    adapted = {re.match(r"(\w+)\{", rule["seriesQuery"]).group(1) for rule in rules}
    assert set(hpa_metrics) <= adapted <= exported
