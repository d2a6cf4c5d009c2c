"""Fixtures of the SMS service tests: templates, recorded publishes, upstream fakes, a callback receiver."""

from __future__ import annotations

import json
import threading

import pytest
from werkzeug.wrappers import Request, Response

from tests.fakes import aliyun_sms, tencent_sms
from tests.fakes.server import serve_in_thread


def create_template(session, tenant_id, **overrides):
    from sms_service.accepting.templates import create_template as create

    fields = {
        "name": "验证码",
        "content": "您的验证码是${code}, ${minutes}分钟内有效",
        "sign_name": "洗衣云",
        "provider_codes": {"aliyun": "SMS_100", "tencent": "1000"},
        "status": "enabled",
    }
    fields.update(overrides)
    return create(session, tenant_id, fields)


def auth(api_key: str, **headers: str) -> dict[str, str]:
    return {"X-Api-Key": api_key, **headers}


@pytest.fixture
def template(sms_db, sms_tenant):
    tenant, _ = sms_tenant
    return create_template(sms_db, tenant.id)


class Published(list):
    """Every task the code published, as ``(task name, args, options)``."""

    def names(self) -> list[str]:
        return [name for name, _args, _options in self]

    def delivered_ids(self) -> list[str]:
        return [mid for name, args, _ in self if name == "sms.deliver" for mid in args[0]]


@pytest.fixture(autouse=True)
def published(monkeypatch) -> Published:
    """Record publishes instead of failing on the test broker (which refuses every publish)."""
    from sms_service.extensions import celery

    recorded = Published()

    def send_task(name, args=None, kwargs=None, **options):
        recorded.append((name, list(args or []), options))

    monkeypatch.setattr(celery, "send_task", send_task)
    return recorded


@pytest.fixture
def configure(sms_app, monkeypatch):
    """Change settings for one test; providers and the circuit breaker are made again from them."""

    def apply(**settings):
        for name, value in settings.items():
            monkeypatch.setitem(sms_app.config, name, value)
        if "PROVIDERS" in settings:
            from sms_service.settings import provider_names

            monkeypatch.setitem(sms_app.config, "PROVIDER_NAMES", provider_names(settings["PROVIDERS"]))
        for extension in ("sms_providers", "sms_circuit_breaker", "sms_limits", "sms_send_profiles"):
            sms_app.extensions.pop(extension, None)

    yield apply
    for extension in ("sms_providers", "sms_circuit_breaker", "sms_limits", "sms_send_profiles"):
        sms_app.extensions.pop(extension, None)


@pytest.fixture
def aliyun(configure):
    """The Aliyun fake over loopback HTTP, configured as the only provider."""
    fake = aliyun_sms.FakeAliyunSms()
    url, stop = serve_in_thread(fake)
    fake.url = url
    configure(
        PROVIDERS="aliyun",
        ALIYUN_ACCESS_KEY_ID=aliyun_sms.ACCESS_KEY_ID,
        ALIYUN_ACCESS_KEY_SECRET=aliyun_sms.ACCESS_KEY_SECRET,
        ALIYUN_ENDPOINT=url,
        PROVIDER_TIMEOUT_SECONDS=2.0,
        PROVIDER_RETRY_DELAY_SECONDS=0.01,
    )
    yield fake
    stop()


@pytest.fixture
def tencent(configure):
    fake = tencent_sms.FakeTencentSms()
    url, stop = serve_in_thread(fake)
    fake.url = url
    configure(
        TENCENT_SECRET_ID=tencent_sms.SECRET_ID,
        TENCENT_SECRET_KEY=tencent_sms.SECRET_KEY,
        TENCENT_SDK_APP_ID=tencent_sms.SDK_APP_ID,
        TENCENT_ENDPOINT=url,
    )
    yield fake
    stop()


class CallbackReceiver:
    """A tiny HTTP endpoint that records each callback and answers the statuses it is told to."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append((dict(request.headers), request.get_data()))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(json.dumps({"ok": status == 200}), status=status, mimetype="application/json")(
            environ, start_response
        )

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.requests]


@pytest.fixture
def receiver(configure):
    app = CallbackReceiver()
    url, stop = serve_in_thread(app)
    app.url = url + "sms/callback"
    configure(CALLBACK_ALLOW_PRIVATE=True)
    yield app
    stop()


def message_ids_of(response) -> list[str]:
    return response.get_json()["data"]["message_ids"]
