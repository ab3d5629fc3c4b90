"""deploy/kubernetes: rendered with kustomize, validated against the Kubernetes and Prometheus Operator
schemas, and checked for what the docs promise (probes, security context, sizing, scraping, rules).

Core objects: kubernetes-validate's schemas for Kubernetes KUBERNETES_VERSION, strict (unknown fields
are errors). PodMonitor, ServiceMonitor and PrometheusRule: the Prometheus Operator's CRD schemas
vendored in tests/data/prometheus-operator/ (version and source in its README), made strict the same
way. The kustomize renderer is the one built into kubectl (no cluster needed).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from monitor_service.cli import main as cli_main
from tests.support.processes import REPO_ROOT

KUBERNETES_VERSION = "1.32.0"
DEPLOY = REPO_ROOT / "deploy" / "kubernetes"
OVERLAYS = ("sidecar", "shared-monitor")
CRDS = REPO_ROOT / "tests" / "data" / "prometheus-operator"
CRD_FILES = {
    "PodMonitor": "monitoring.coreos.com_podmonitors.yaml",
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}
IMAGE_ROOT = "/app"  # the Dockerfile's WORKDIR: the repository's files live under it in the image

sys.path.insert(0, str(DEPLOY))
import generate  # noqa: E402
import sizing  # noqa: E402


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize built in) is needed: apt-get install -y kubectl"
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(_kustomize(DEPLOY / "overlays" / overlay))


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused where it lists properties (Kubernetes would prune them
    silently, so a typo would pass unnoticed)."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load((CRDS / CRD_FILES[kind]).read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return validator_class(schema)


def validate(resource: dict[str, Any]) -> None:
    """Raise when the resource does not fit its schema."""
    if resource["kind"] in CRD_FILES:
        assert resource["apiVersion"] == "monitoring.coreos.com/v1"
        errors = sorted(crd_validator(resource["kind"]).iter_errors(resource), key=str)
        if errors:
            raise AssertionError("; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]))
        return
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def _one(resources: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    [found] = [r for r in resources if r["kind"] == kind]
    return found


def _workloads(resources: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] in ("Deployment", "StatefulSet")]


def _monitor_container(resources: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec holding the drift-monitor container, and that container."""
    for workload in _workloads(resources):
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"]:
            if container["name"] == "drift-monitor":
                return pod, container
    raise AssertionError("no drift-monitor container")


# ------------------------------------------------------------------------------------ generated rules


def test_prometheusrule_is_generated_from_the_current_rules() -> None:
    committed = (DEPLOY / "base" / "prometheusrule.yaml").read_text()
    assert committed == generate.render(), "run python deploy/kubernetes/generate.py"


def test_prometheusrule_holds_every_rule_group_unchanged() -> None:
    rule = yaml.safe_load((DEPLOY / "base" / "prometheusrule.yaml").read_text())
    expected = [g for path in generate.rule_files() for g in yaml.safe_load(path.read_text())["groups"]]
    assert rule["spec"]["groups"] == expected
    assert {p.name for p in generate.rule_files()} == {
        "drift_monitor_alerts.yml",
        "drift_monitor_recording_rules.yml",
    }


# ------------------------------------------------------------------------------------ schemas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_every_object_fits_its_schema(overlay: str) -> None:
    resources = rendered(overlay)
    kinds = sorted(r["kind"] for r in resources)
    assert "PrometheusRule" in kinds and "ConfigMap" in kinds
    for resource in resources:
        validate(resource)


def test_validators_catch_unknown_and_wrong_fields() -> None:
    """The controls: the same validators refuse a typo and a wrong type."""
    resources = rendered("sidecar")
    podmonitor = copy.deepcopy(_one(resources, "PodMonitor"))
    podmonitor["spec"]["podMetricEndpoints"] = podmonitor["spec"].pop("podMetricsEndpoints")
    with pytest.raises(AssertionError, match="podMetricEndpoints"):
        validate(podmonitor)
    rule = copy.deepcopy(_one(resources, "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = 30
    with pytest.raises(AssertionError):
        validate(rule)
    deployment = copy.deepcopy(_one(resources, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


# ------------------------------------------------------------------------------------ the pods


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_run_restricted(overlay: str) -> None:
    for workload in _workloads(rendered(overlay)):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's app user (Dockerfile)
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"requests", "limits"} <= set(container["resources"])
            assert "memory" in container["resources"]["limits"]
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts  # writable scratch space on a read-only root


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitor_probes_config_volume_and_tokens(overlay: str) -> None:
    resources = rendered(overlay)
    pod, container = _monitor_container(resources)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    config_map = _one(resources, "ConfigMap")
    config = yaml.safe_load(config_map["data"]["monitor.yaml"])
    assert ports["monitor"] == config["server"]["port"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert container["command"][-1] == "/etc/drift-monitor/monitor.yaml"
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    assert volumes[mounts["/etc/drift-monitor"]]["configMap"]["name"] == config_map["metadata"]["name"]
    data_volume = mounts[config["storage"]["data_dir"]]  # storage.data_dir is a mounted volume
    claims = {
        claim["metadata"]["name"]
        for workload in _workloads(resources)
        for claim in workload["spec"].get("volumeClaimTemplates", [])
    }
    assert data_volume in volumes or data_volume in claims
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert set(env) == {f"DRIFT_MONITOR_{role}_TOKEN" for role in ("INGEST", "ADMIN", "METRICS")}
    assert {ref["name"] for ref in env.values()} == {"drift-monitor-tokens"}


def test_sidecar_pod_holds_model_service_and_monitor_talking_over_loopback() -> None:
    resources = rendered("sidecar")
    [deployment] = _workloads(resources)
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"model-service", "drift-monitor"}
    env = {e["name"]: e for e in containers["model-service"]["env"]}
    assert env["MONITOR_URL"]["value"] == "http://127.0.0.1:8000"
    assert env["MONITOR_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "ingest-token"


def test_shared_monitor_is_reached_through_its_service() -> None:
    resources = rendered("shared-monitor")
    services = {s["metadata"]["name"]: s for s in resources if s["kind"] == "Service"}
    model_service = _one(resources, "Deployment")
    [container] = model_service["spec"]["template"]["spec"]["containers"]
    url = {e["name"]: e.get("value") for e in container["env"]}["MONITOR_URL"]
    assert url == f"http://drift-monitor:{services['drift-monitor']['spec']['ports'][0]['port']}"
    monitor = _one(resources, "StatefulSet")
    pod_labels = monitor["spec"]["template"]["metadata"]["labels"]
    assert _selected(services["drift-monitor"]["spec"]["selector"], pod_labels)


def test_monitor_config_passes_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ConfigMap's file is a valid config for this monitor (image paths mapped to the repository)."""
    text = (DEPLOY / "base" / "monitor.yaml").read_text()
    assert f"{IMAGE_ROOT}/datasets/" in text
    local = tmp_path / "monitor.yaml"
    local.write_text(text.replace(f"{IMAGE_ROOT}/", f"{REPO_ROOT}/"))
    assert cli_main(["check-config", str(local)]) == 0, capsys.readouterr().err
    assert "OK" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ scraping


def _selected(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_podmonitor_selects_the_sidecar_pod_port_and_sets_the_job() -> None:
    resources = rendered("sidecar")
    podmonitor = _one(resources, "PodMonitor")
    pod = _one(resources, "Deployment")["spec"]["template"]
    assert _selected(podmonitor["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    [endpoint] = podmonitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "drift-monitor"} in endpoint["relabelings"]
    assert endpoint["authorization"]["credentials"]["key"] == "metrics-token"


def test_servicemonitor_selects_the_monitor_service_and_sets_the_job() -> None:
    resources = rendered("shared-monitor")
    monitor = _one(resources, "ServiceMonitor")
    [service] = [s for s in resources if s["kind"] == "Service" and s["metadata"]["name"] == "drift-monitor"]
    assert _selected(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert {"targetLabel": "job", "replacement": "drift-monitor"} in endpoint["relabelings"]


# ------------------------------------------------------------------------------------ sizing


def _quantity_mb(value: str) -> float:
    assert value.endswith("Mi"), value
    return int(value[:-2]) * 2**20 / 1e6


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitor_resources_come_from_the_sizing_formula(overlay: str) -> None:
    config = DEPLOY / "base" / "monitor.yaml"
    local = {  # the reference files named in the config, counted in the repository
        "diamonds_regression": sizing._count_rows(REPO_ROOT / "datasets/diamonds/reference_regression.csv"),
        "diamonds_classification": sizing._count_rows(
            REPO_ROOT / "datasets/diamonds/reference_classification.csv"
        ),
    }
    estimate = sizing.estimate(sizing.shapes_from_config(config, local))
    _, container = _monitor_container(rendered(overlay))
    resources = container["resources"]
    assert resources["requests"]["memory"] == sizing.mebibytes(estimate.request_mb)
    assert resources["limits"]["memory"] == sizing.mebibytes(estimate.limit_mb)
    assert _quantity_mb(resources["limits"]["memory"]) > estimate.server_peak + estimate.worker_peak
