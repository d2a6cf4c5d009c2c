"""deploy/k8s (kustomize base + the example overlay) against the Kubernetes schemas and the code: settings,
probes, commands identical to compose, every published queue consumed, one beat, autoscalers and budgets
that point at what exists."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.manifests import (
    K8S,
    SECRET_SETTINGS,
    by_kind_and_name,
    check_command,
    consumed_queues,
    kustomize,
    load_compose,
    published_queues,
    read_env_file,
)

KUBERNETES_VERSION = "1.30"
OVERLAY = K8S / "overlays" / "example"


@pytest.fixture(scope="module")
def base():
    return kustomize(K8S / "base")


@pytest.fixture(scope="module")
def objects(base):
    return by_kind_and_name(base)


@pytest.fixture(scope="module")
def overlay():
    return yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())


def containers(deployment) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


def test_every_manifest_is_valid_against_the_kubernetes_schema(base):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for document in base:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_each_service_has_its_objects(objects, service):
    expected = {
        ("ConfigMap", f"{service.key}-config"),
        ("Job", f"{service.key}-migrate"),
        ("Deployment", f"{service.key}-api"),
        ("Service", f"{service.key}-api"),
        ("HorizontalPodAutoscaler", f"{service.key}-api"),
        ("PodDisruptionBudget", f"{service.key}-api"),
        ("Deployment", f"{service.key}-worker"),
        ("HorizontalPodAutoscaler", f"{service.key}-worker"),
        ("PodDisruptionBudget", f"{service.key}-worker"),
        ("Deployment", f"{service.key}-beat"),
    }
    assert expected <= set(objects)


def test_commands_are_real_and_the_same_as_in_compose(objects, service):
    compose = load_compose()["services"]
    for role in ("api", "worker", "beat"):
        [container] = containers(objects[("Deployment", f"{service.key}-{role}")])
        assert check_command(container["command"], service) == role
        assert container["command"] == compose[f"{service.key}-{role}"]["command"], role
    [migrate] = objects[("Job", f"{service.key}-migrate")]["spec"]["template"]["spec"]["containers"]
    assert check_command(migrate["command"], service) == "migrate"
    assert migrate["command"] == compose[f"{service.key}-migrate"]["command"]


def test_every_published_queue_is_consumed(objects, service, service_app):
    consumed = set()
    for (kind, _name), document in objects.items():
        if kind == "Deployment":
            for container in containers(document):
                command = container["command"]
                if command[0] == "celery" and "worker" in command and f"{service.package}.worker" in command:
                    consumed |= consumed_queues(command, service)
    assert published_queues(service, service_app) <= consumed


def test_probes_hit_routes_of_the_app(objects, service, service_app):
    routes = {rule.rule for rule in service_app.url_map.iter_rules()}
    [api] = containers(objects[("Deployment", f"{service.key}-api")])
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    assert api["livenessProbe"]["httpGet"]["port"] in ports


def test_worker_liveness_is_its_metrics_exporter(objects, service):
    config = objects[("ConfigMap", f"{service.key}-config")]["data"]
    deployment = objects[("Deployment", f"{service.key}-worker")]
    [worker] = containers(deployment)
    port = int(config[f"{service.prefix}_WORKER_METRICS_PORT"])
    assert {p["name"]: p["containerPort"] for p in worker["ports"]}[
        worker["livenessProbe"]["httpGet"]["port"]
    ] == port
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_settings_come_from_the_configmap_and_the_secret(objects, overlay, service):
    config = objects[("ConfigMap", f"{service.key}-config")]["data"]
    [secret] = [g for g in overlay["secretGenerator"] if g["name"] == f"{service.key}-secrets"]
    secret_keys: dict[str, str] = {}
    for env_file in secret["envs"]:
        secret_keys |= read_env_file(OVERLAY / env_file)
    provided = set(config) | set(secret_keys)
    missing = [name for name in service.required if f"{service.prefix}_{name}" not in provided]
    assert not missing, f"neither {service.key}-config nor {service.key}-secrets provides {missing}"
    unknown = [name for name in provided if not service.known_variable(name)]
    assert not unknown, f"{unknown} is no setting of {service.package}"
    leaked = [name for name in config if name.removeprefix(service.prefix + "_") in SECRET_SETTINGS]
    assert not leaked, f"credentials belong in the Secret, not the ConfigMap: {leaked}"
    assert config[f"{service.prefix}_ENV"] == "production"
    for kind, name in (
        ("Deployment", "api"),
        ("Deployment", "worker"),
        ("Deployment", "beat"),
        ("Job", "migrate"),
    ):
        document = objects[(kind, f"{service.key}-{name}")]
        for container in document["spec"]["template"]["spec"]["containers"]:
            sources = {(next(iter(ref)), ref[next(iter(ref))]["name"]) for ref in container["envFrom"]}
            assert sources == {
                ("configMapRef", f"{service.key}-config"),
                ("secretRef", f"{service.key}-secrets"),
            }


def test_one_beat_that_never_overlaps_itself(objects, service):
    beat = objects[("Deployment", f"{service.key}-beat")]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert ("HorizontalPodAutoscaler", f"{service.key}-beat") not in objects


def test_every_container_has_requests_limits_and_runs_unprivileged(base):
    for document in base:
        template = document.get("spec", {}).get("template")
        if not template:
            continue
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(
                resources["limits"]
            )
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{document['metadata']['name']}: metrics and beat write under /tmp"


def test_autoscalers_and_budgets_point_at_the_deployments(objects):
    deployments = {name: doc for (kind, name), doc in objects.items() if kind == "Deployment"}
    for (kind, name), document in objects.items():
        if kind == "HorizontalPodAutoscaler":
            target = document["spec"]["scaleTargetRef"]
            assert target["kind"] == "Deployment" and target["name"] in deployments
            assert document["spec"]["minReplicas"] >= 2
        if kind in {"PodDisruptionBudget", "Service"}:
            selector = document["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            matched = [
                n
                for n, d in deployments.items()
                if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert matched == [name], f"{kind} {name} selects {matched}"


def test_shutdown_grace_covers_the_graceful_timeouts(objects, service):
    api = objects[("Deployment", f"{service.key}-api")]["spec"]["template"]["spec"]
    [container] = api["containers"]
    graceful = int({e["name"]: e["value"] for e in container["env"]}["GUNICORN_GRACEFUL_TIMEOUT"])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert api["terminationGracePeriodSeconds"] > graceful + pre_stop
    worker = objects[("Deployment", f"{service.key}-worker")]["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= 60


def test_the_example_overlay_refers_to_what_the_base_holds(objects, overlay):
    assert overlay["resources"] == ["../../base"] and (OVERLAY / "../../base").resolve() == K8S / "base"
    images = {
        container["image"]
        for document in objects.values()
        for container in document.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    }
    assert {image["name"] for image in overlay["images"]} == images
    for generator in overlay["configMapGenerator"]:
        assert generator["behavior"] == "merge" and ("ConfigMap", generator["name"]) in objects
    for generator in overlay["secretGenerator"]:
        assert all((OVERLAY / env_file).is_file() for env_file in generator["envs"])
    for patch in overlay["patches"]:
        assert (patch["target"]["kind"], patch["target"]["name"]) in objects
