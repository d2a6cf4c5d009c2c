"""What both services share at their foundation: keys, CLI, health, OpenAPI, migrations, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from openapi_spec_validator import validate

from shared.settings import ConfigurationError
from tests.factories import create_payment_tenant, create_sms_tenant

ROOT = Path(__file__).resolve().parents[1]

SERVICES = {
    "sms": {"prefix": "/api/v1/sms", "scopes": {"sms:send", "sms:admin"}, "secret": "callback_secret"},
    "payment": {
        "prefix": "/api/v1/payment",
        "scopes": {"payment:admin", "payment:order"},
        "secret": "notify_secret",
    },
}


@pytest.fixture(params=sorted(SERVICES))
def service(request):
    """``(name, app, client, session, make_tenant)`` for each service in turn."""
    name = request.param
    app = request.getfixturevalue(f"{name}_app")
    session = request.getfixturevalue(f"{name}_db")
    make_tenant = create_sms_tenant if name == "sms" else create_payment_tenant
    return name, app, app.test_client(), session, make_tenant


def database_of(name):
    if name == "sms":
        from sms_service.extensions import db
    else:
        from payment_service.extensions import db
    return db


def test_me_answers_tenant_and_key(service):
    name, _app, client, session, make_tenant = service
    tenant, api_key = make_tenant(session)
    response = client.get(SERVICES[name]["prefix"] + "/me", headers={"X-Api-Key": api_key})
    body = response.get_json()
    assert response.status_code == 200 and body["code"] == 0
    assert body["data"]["tenant_id"] == tenant.id
    assert body["data"]["tenant_name"] == tenant.name
    assert set(body["data"]["scopes"]) == SERVICES[name]["scopes"]
    assert body["data"]["key_id"].startswith("KEY_")


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": ""}, {"X-Api-Key": "sk_live_" + "x" * 43}])
def test_missing_or_unknown_key_is_401_envelope(service, headers):
    name, _app, client, _session, _make = service
    response = client.get(SERVICES[name]["prefix"] + "/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == 401


def test_key_of_the_other_service_does_not_authenticate(sms_app, sms_db, payment_app, payment_db):
    _tenant, sms_key = create_sms_tenant(sms_db)
    response = payment_app.test_client().get("/api/v1/payment/me", headers={"X-Api-Key": sms_key})
    assert response.status_code == 401


def test_cli_tenant_create_prints_a_working_key(service):
    name, app, client, _session, _make = service
    args = ["tenant", "create", "--name", "华北加盟商"] + (["--daily-quota", "500"] if name == "sms" else [])
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["tenant_id"].startswith("TNT_")
    assert created["api_key"].startswith("sk_live_")
    assert len(created[SERVICES[name]["secret"]]) >= 32
    assert set(created["scopes"]) == SERVICES[name]["scopes"]
    if name == "sms":
        assert created["daily_quota"] == 500
    me = client.get(SERVICES[name]["prefix"] + "/me", headers={"X-Api-Key": created["api_key"]})
    assert me.get_json()["data"]["tenant_id"] == created["tenant_id"]

    listed = json.loads(app.test_cli_runner().invoke(args=["tenant", "list"]).output)
    assert created["tenant_id"] in {row["tenant_id"] for row in listed}


def test_cli_key_create_with_scope_and_revoke(service):
    name, app, client, session, make_tenant = service
    tenant, _ = make_tenant(session)
    scope = sorted(SERVICES[name]["scopes"])[0]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["key", "create", "--tenant", tenant.id, "--scope", scope])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["scopes"] == [scope]
    url = SERVICES[name]["prefix"] + "/me"
    assert client.get(url, headers={"X-Api-Key": created["api_key"]}).status_code == 200

    revoked = runner.invoke(args=["key", "revoke", created["key_id"]])
    assert revoked.exit_code == 0, revoked.output
    response = client.get(url, headers={"X-Api-Key": created["api_key"]})
    assert response.status_code == 401
    assert response.get_json()["code"] == 401


def test_cli_key_create_refuses_unknown_tenant_and_scope(service):
    name, app, _client, session, make_tenant = service
    runner = app.test_cli_runner()
    assert runner.invoke(args=["key", "create", "--tenant", "TNT_nope"]).exit_code != 0
    tenant, _ = make_tenant(session)
    assert runner.invoke(args=["key", "create", "--tenant", tenant.id, "--scope", "root"]).exit_code != 0
    assert runner.invoke(args=["key", "revoke", "KEY_nope"]).exit_code != 0


def test_healthz(service):
    _name, _app, client, _session, _make = service
    assert client.get("/healthz").get_json() == {"code": 0, "data": {"status": "ok"}, "message": "success"}


def test_readyz_is_503_envelope_when_the_database_is_unreachable(service, monkeypatch):
    name, app, client, _session, _make = service
    from shared.db import make_engine

    db = database_of(name)
    monkeypatch.setattr(db, "engine", make_engine("postgresql://nobody@127.0.0.1:9/none"))
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["code"] == 503 and body["data"]["database"] == "unreachable"
    assert "Traceback" not in response.get_data(as_text=True)


def test_openapi_document_is_valid_and_matches_the_committed_export(service):
    name, app, client, _session, _make = service
    served = client.get("/openapi.json").get_json()
    validate(served)
    assert served["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
    }
    committed = json.loads((ROOT / "openapi" / f"{name}.json").read_text())
    assert served == committed, f"openapi/{name}.json is stale: run `make openapi`"


def test_docs_pages_render(service):
    _name, _app, client, _session, _make = service
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.get_data(as_text=True)
    assert client.get("/_static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert "cdn" not in docs.get_data(as_text=True).lower()  # nothing loaded from elsewhere: works offline
    redoc = client.get("/redoc")  # not offered: its bundle would come from a CDN
    assert redoc.status_code == 404 and redoc.get_json()["code"] == 404


def test_migrations_match_the_models(service):
    name, _app, _client, _session, _make = service
    db = database_of(name)
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == [], f"models and migrations of {name} differ: {diff}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_production_refuses_embedded_defaults_and_names_the_variable(name, monkeypatch):
    prefix = name.upper()
    for variable in ("DATABASE_URL", "BROKER_URL", "SECRET_KEY"):
        monkeypatch.delenv(f"{prefix}_{variable}", raising=False)
    monkeypatch.setenv(f"{prefix}_ENV", "production")
    create_app = _create_app(name)
    with pytest.raises(ConfigurationError, match=f"{prefix}_DATABASE_URL"):
        create_app()
    monkeypatch.setenv(f"{prefix}_DATABASE_URL", "postgresql://db.internal/x")
    with pytest.raises(ConfigurationError, match=f"{prefix}_BROKER_URL"):
        create_app()


def test_payment_secret_key_must_be_32_bytes_of_base64(monkeypatch):
    from payment_service import create_app

    with pytest.raises(ConfigurationError, match="PAYMENT_SECRET_KEY must be base64"):
        create_app({"ENV": "testing", "SECRET_KEY": "not base64!"})
    with pytest.raises(ConfigurationError, match="exactly 32 bytes"):
        create_app({"ENV": "testing", "SECRET_KEY": "c2hvcnQ="})
    monkeypatch.setenv("PAYMENT_ENV", "production")
    monkeypatch.setenv("PAYMENT_DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("PAYMENT_BROKER_URL", "amqp://mq//")
    monkeypatch.delenv("PAYMENT_SECRET_KEY", raising=False)
    monkeypatch.delenv("PAYMENT_PUBLIC_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="PAYMENT_SECRET_KEY"):
        create_app()
    with pytest.raises(ConfigurationError, match="PAYMENT_PUBLIC_BASE_URL"):
        create_app()


def test_test_broker_fails_loudly_on_an_unintended_publish(sms_app):
    from sms_service.extensions import celery

    with pytest.raises(Exception, match="unconfigured"):
        celery.send_task("sms.never", queue="sms-send")


def _create_app(name):
    if name == "sms":
        from sms_service import create_app
    else:
        from payment_service import create_app
    return create_app
