"""Every error kind answers the envelope with HTTP status = code, and never leaks internals."""

from __future__ import annotations

import logging

import marshmallow as ma
import pytest
from flask.views import MethodView

from shared.api import Blueprint
from shared.envelope import ConflictError, TooManyRequestsError, UpstreamError, envelope, ok
from tests.shared.envelope_apps import envelope_app


class EchoSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=10))
    count = ma.fields.Integer(load_default=1)


@pytest.fixture
def client():
    app, api = envelope_app("envelope-test", max_content_length=1024)
    blp = Blueprint("echo", __name__, url_prefix="/echo")

    @blp.route("")
    class Echo(MethodView):
        @blp.arguments(EchoSchema)
        @blp.response(200, envelope(EchoSchema))
        def post(self, body):
            return ok(body)

    @blp.route("/conflict")
    class Conflict(MethodView):
        def get(self):
            raise ConflictError("资源冲突: 已绑定", data={"bound_sites": 3})

    @blp.route("/throttled")
    class Throttled(MethodView):
        def get(self):
            raise TooManyRequestsError("今日发送配额已用尽", retry_after=42, data={"limit": "daily_quota"})

    @blp.route("/upstream")
    class Upstream(MethodView):
        def get(self):
            raise UpstreamError(
                "上游渠道错误", data={"upstream_code": "SYSTEM_ERROR", "upstream_message": "x"}
            )

    @blp.route("/boom")
    class Boom(MethodView):
        def get(self):
            raise RuntimeError("database password is hunter2")

    api.register_blueprint(blp)
    return app.test_client()


def assert_envelope(response, status):
    body = response.get_json()
    assert response.status_code == status
    assert set(body) == {"code", "data", "message"}
    assert body["code"] == status
    assert body["message"]
    return body


def test_success_is_wrapped(client):
    response = client.post("/echo", json={"name": "洗衣"})
    assert response.status_code == 200
    assert response.get_json() == {"code": 0, "data": {"name": "洗衣", "count": 1}, "message": "success"}


def test_unknown_path_is_404_envelope(client):
    assert_envelope(client.get("/no/such/path"), 404)


def test_wrong_method_is_405_envelope_with_allow(client):
    response = client.delete("/echo")
    assert_envelope(response, 405)
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400(client):
    response = client.post("/echo", data="{not json", content_type="application/json")
    body = assert_envelope(response, 400)
    assert body["data"]["errors"]


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "42", "null"])
def test_body_that_is_not_an_object_is_400(client, payload):
    response = client.post("/echo", data=payload, content_type="application/json")
    body = assert_envelope(response, 400)
    assert body["data"]["errors"]


def test_validation_errors_name_the_fields(client):
    response = client.post("/echo", json={"name": "", "count": "many"})
    body = assert_envelope(response, 400)
    assert set(body["data"]["errors"]) == {"name", "count"}
    assert "name" in body["message"] and "count" in body["message"]


def test_missing_required_field_is_400(client):
    body = assert_envelope(client.post("/echo", json={}), 400)
    assert "name" in body["data"]["errors"]


def test_api_error_keeps_message_and_data(client):
    body = assert_envelope(client.get("/echo/conflict"), 409)
    assert body == {"code": 409, "data": {"bound_sites": 3}, "message": "资源冲突: 已绑定"}


def test_429_carries_retry_after(client):
    response = client.get("/echo/throttled")
    body = assert_envelope(response, 429)
    assert response.headers["Retry-After"] == "42"
    assert body["data"] == {"limit": "daily_quota"}


def test_502_carries_upstream_details(client):
    body = assert_envelope(client.get("/echo/upstream"), 502)
    assert body["data"]["upstream_code"] == "SYSTEM_ERROR"


def test_unexpected_exception_is_500_without_internals(client, caplog):
    with caplog.at_level(logging.ERROR):
        response = client.get("/echo/boom", headers={"X-Request-Id": "req-abc-123"})
    body = assert_envelope(response, 500)
    assert "hunter2" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["data"] == {"request_id": "req-abc-123"}
    assert response.headers["X-Request-Id"] == "req-abc-123"
    assert any("req-abc-123" in record.getMessage() for record in caplog.records)


def test_oversized_body_is_413(client):
    response = client.post("/echo", data="x" * 4096, content_type="application/json")
    assert_envelope(response, 413)


def test_request_id_is_generated_when_absent_or_unsafe(client):
    response = client.get("/no/such/path", headers={"X-Request-Id": "bad id; drop"})
    assert len(response.headers["X-Request-Id"]) == 32
