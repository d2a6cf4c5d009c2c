"""deploy/compose.yaml against the code: required settings provided, two databases, real commands, every
published queue consumed, healthchecks behind every ``service_healthy`` condition."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import (
    COMPOSE_FILE,
    ROOT,
    check_command,
    compose_environment,
    consumed_queues,
    interpolate,
    load_compose,
    published_queues,
)

ROLES = ("migrate", "api", "worker", "beat")


@pytest.fixture(scope="module")
def compose():
    return load_compose()


def test_every_service_is_built_from_a_dockerfile_that_exists(compose):
    for name, definition in compose["services"].items():
        if "build" in definition:
            context = (COMPOSE_FILE.parent / definition["build"]["context"]).resolve()
            assert context == ROOT, name
            assert (context / definition["build"]["dockerfile"]).is_file(), name


def test_each_service_has_migrate_api_worker_and_beat_running_real_commands(compose, service):
    for role in ROLES:
        definition = compose["services"][f"{service.key}-{role}"]
        assert definition["build"]["dockerfile"] == f"deploy/Dockerfile.{service.key}"
        assert check_command(definition["command"], service) == role


def test_required_settings_are_provided_and_every_variable_is_a_real_setting(compose, service):
    for role in ROLES:
        definition = compose["services"][f"{service.key}-{role}"]
        env = compose_environment(definition, {"PAYMENT_SECRET_KEY": "given"})
        missing = [name for name in service.required if not env.get(f"{service.prefix}_{name}")]
        assert not missing, f"{service.key}-{role} lacks {missing}"
        unknown = [name for name in env if not service.known_variable(name)]
        assert not unknown, (
            f"{service.key}-{role} sets {unknown}, which {service.package}.settings does not read"
        )
        assert env[f"{service.prefix}_ENV"] == "production"


def test_the_payment_secret_key_has_no_default(compose):
    definition = compose["services"]["payment-api"]
    with pytest.raises(KeyError, match="PAYMENT_SECRET_KEY"):
        compose_environment(definition)


def test_each_service_has_its_own_database(compose, service):
    env = compose_environment(compose["services"][f"{service.key}-api"], {"PAYMENT_SECRET_KEY": "given"})
    url = urlsplit(env[f"{service.prefix}_DATABASE_URL"])
    database = compose["services"][url.hostname]
    assert database["image"].startswith("postgres:")
    db_env = compose_environment(database)
    assert url.path.lstrip("/") == db_env["POSTGRES_DB"] and url.username == db_env["POSTGRES_USER"]
    assert url.password == db_env["POSTGRES_PASSWORD"]
    hosts = {
        urlsplit(
            compose_environment(compose["services"][f"{other}-api"], {"PAYMENT_SECRET_KEY": "given"})[
                f"{other.upper()}_DATABASE_URL"
            ]
        ).hostname
        for other in ("sms", "payment")
    }
    assert len(hosts) == 2, "the two services must never share a database server"


def test_broker_and_redis_urls_name_compose_services(compose, service):
    env = compose_environment(compose["services"][f"{service.key}-worker"], {"PAYMENT_SECRET_KEY": "given"})
    broker = urlsplit(env[f"{service.prefix}_BROKER_URL"])
    assert broker.scheme in {"amqp", "redis"} and broker.hostname in compose["services"]
    broker_env = compose_environment(compose["services"][broker.hostname])
    assert broker.username == broker_env["RABBITMQ_DEFAULT_USER"]
    assert broker.password == broker_env["RABBITMQ_DEFAULT_PASS"]
    if f"{service.prefix}_REDIS_URL" in env:
        assert urlsplit(env[f"{service.prefix}_REDIS_URL"]).hostname in compose["services"]


def test_every_published_queue_is_consumed_by_a_worker(compose, service, service_app):
    consumed = set()
    for definition in compose["services"].values():
        command = definition.get("command") or []
        if command[:1] == ["celery"] and "worker" in command and f"{service.package}.worker" in command:
            consumed |= consumed_queues(command, service)
    published = published_queues(service, service_app)
    assert published, "found no queue the code publishes to"
    assert published <= consumed, f"nothing consumes {sorted(published - consumed)}"


def test_startup_order_waits_for_migrations_and_healthy_dependencies(compose, service):
    services = compose["services"]
    migrate = services[f"{service.key}-migrate"]
    assert migrate["restart"] == "no"
    assert all(c["condition"] == "service_healthy" for c in migrate["depends_on"].values())
    for role in ("api", "worker", "beat"):
        depends = services[f"{service.key}-{role}"]["depends_on"]
        assert depends[f"{service.key}-migrate"] == {"condition": "service_completed_successfully"}
        broker = "rabbitmq"
        assert depends[broker] == {"condition": "service_healthy"}
    for name, definition in services.items():
        for dependency, condition in (definition.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                healthcheck = services[dependency].get("healthcheck") or {}
                assert healthcheck.get("test") and not healthcheck.get("disable"), dependency


def test_api_healthcheck_probes_a_route_of_the_app(compose, service, service_app):
    test = compose["services"][f"{service.key}-api"]["healthcheck"]["test"]
    path = " ".join(test).split("127.0.0.1:8000")[1].split("'")[0]
    assert path in {rule.rule for rule in service_app.url_map.iter_rules()}


def test_worker_healthcheck_pings_the_worker_by_its_own_name(compose, service):
    definition = compose["services"][f"{service.key}-worker"]
    name = definition["command"][definition["command"].index("-n") + 1]
    test = interpolate(" ".join(definition["healthcheck"]["test"]))
    assert f"-A {service.package}.worker inspect ping" in test
    assert f"-d {name.replace('%h', '$HOSTNAME')}" in test


def test_graceful_stop_periods_cover_gunicorn_and_celery(compose, service):
    api = compose["services"][f"{service.key}-api"]
    assert int(api["stop_grace_period"].rstrip("s")) > 30  # GUNICORN_GRACEFUL_TIMEOUT's default
    worker = compose["services"][f"{service.key}-worker"]
    assert int(worker["stop_grace_period"].rstrip("s")) >= 60


def test_sandbox_profile_runs_the_fakes_the_services_point_at(compose):
    services = compose["services"]
    fakes = {name: d for name, d in services.items() if "sandbox" in (d.get("profiles") or [])}
    assert set(fakes) == {"wechatpay-sandbox", "alipay-sandbox", "aliyun-sandbox", "tencent-sandbox"}
    ports = {}
    for name, definition in fakes.items():
        command = definition["command"]
        assert check_command(command, None) == "module"
        ports[name] = int(command[command.index("--port") + 1])
    assert not any(d.get("profiles") for name, d in services.items() if name not in fakes)
    payment = compose_environment(services["payment-api"], {"PAYMENT_SECRET_KEY": "given"})
    sms = compose_environment(services["sms-api"])
    for url in (
        payment["PAYMENT_WECHATPAY_BASE_URL"],
        payment["PAYMENT_ALIPAY_GATEWAY_URL"],
        sms["SMS_ALIYUN_ENDPOINT"],
        sms["SMS_TENCENT_ENDPOINT"],
    ):
        parts = urlsplit(url)
        assert ports[parts.hostname] == parts.port, url
