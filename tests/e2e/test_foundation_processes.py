"""Both services under gunicorn with workers, on PostgreSQL and the real broker, set up by the CLI."""

from __future__ import annotations

import json
import time

import pytest
import requests

from payment_service.settings import generate_secret_key
from tests.e2e.processes import run_cli, running, service_env, start_gunicorn, start_worker

pytestmark = pytest.mark.e2e

SERVICES = [("sms_service", "SMS", "/api/v1/sms/me"), ("payment_service", "PAYMENT", "/api/v1/payment/me")]


@pytest.mark.parametrize(("module", "prefix", "me_path"), SERVICES)
def test_service_runs_as_deployed(
    module, prefix, me_path, databases, broker_url, postgres_required, tmp_path
):
    env = service_env(prefix, ENV="production", DATABASE_URL=databases.create(module), BROKER_URL=broker_url)
    if prefix == "PAYMENT":
        env["PAYMENT_SECRET_KEY"] = generate_secret_key()
        env["PAYMENT_PUBLIC_BASE_URL"] = "https://pay.example.com"
    run_cli(module, env, "db", "upgrade")
    created = json.loads(run_cli(module, env, "tenant", "create", "--name", "e2e"))

    api, base_url = start_gunicorn(f"{module}:create_app()", env, tmp_path)
    worker = start_worker(f"{module}.worker", env, tmp_path, extra=["-P", "solo"])
    with running(api, worker):
        ready = requests.get(base_url + "/readyz", timeout=5).json()
        assert ready == {"code": 0, "data": {"database": "ok", "broker": "ok"}, "message": "success"}
        me = requests.get(base_url + me_path, headers={"X-Api-Key": created["api_key"]}, timeout=5)
        assert me.json()["data"]["tenant_id"] == created["tenant_id"]
        denied = requests.get(base_url + me_path, headers={"X-Api-Key": "sk_live_forged"}, timeout=5)
        assert denied.status_code == 401 and denied.json()["code"] == 401

        run_cli(module, env, "key", "revoke", created["key_id"])
        time.sleep(5.2)  # other processes see a revocation within the cache TTL (5 s)
        revoked = requests.get(base_url + me_path, headers={"X-Api-Key": created["api_key"]}, timeout=5)
        assert revoked.status_code == 401
        assert "Traceback" not in api.log()
