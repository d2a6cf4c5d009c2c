"""Every error kind answers the envelope with HTTP status = code, and never leaks internals."""

from __future__ import annotations

import io
import logging

import marshmallow as ma
import pytest
from flask import request
from flask.views import MethodView

from shared.api import UNSTORABLE_TEXT, Blueprint
from shared.envelope import ConflictError, TooManyRequestsError, UpstreamError, envelope, ok
from tests.shared.envelope_apps import envelope_app


class EchoSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=10))
    count = ma.fields.Integer(load_default=1)


MAX_CONTENT_LENGTH = 16 * 1024


@pytest.fixture
def client():
    app, api = envelope_app("envelope-test", max_content_length=MAX_CONTENT_LENGTH)
    blp = Blueprint("echo", __name__, url_prefix="/echo")

    @blp.route("")
    class Echo(MethodView):
        @blp.arguments(EchoSchema())
        @blp.response(200, envelope(EchoSchema))
        def post(self, body):
            return ok(body)

    @blp.route("/raw")
    class Raw(MethodView):
        @blp.arguments(EchoSchema())
        def post(self, body):
            # The body stays readable after the arguments were loaded.
            return ok({"body": body, "raw": request.get_data(as_text=True)})

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


@pytest.mark.parametrize(
    "data",
    [b'{"name": "\\xff"}', '{"name": "a"}'.encode("utf-16")],
    ids=["invalid UTF-8", "UTF-16"],
)
def test_a_body_that_is_not_utf8_json_is_400(client, data):
    body = assert_envelope(client.post("/echo", data=data, content_type="application/json"), 400)
    assert body["data"]["errors"]


def test_json_nested_too_deeply_to_parse_is_400(client):
    response = client.post("/echo", data="[" * 5000 + "]" * 5000, content_type="application/json")
    body = assert_envelope(response, 400)
    assert body["message"] == "请求体 JSON 嵌套层级过深"
    assert body["data"]["errors"] == {"_body": ["JSON 嵌套层级过深"]}


@pytest.mark.parametrize(
    "data",
    [
        '{"name": "a\\u0000"}',
        '{"name": "\\ud800"}',
        '{"name": "a", "x\\u0000": 1}',
        '{"name": "a", "n": ["\\udfff"]}',
    ],
    ids=["NUL", "lone surrogate", "NUL in a key", "surrogate nested"],
)
def test_text_the_database_cannot_store_is_400(client, data):
    body = assert_envelope(client.post("/echo", data=data, content_type="application/json"), 400)
    assert body["message"] == UNSTORABLE_TEXT
    assert body["data"]["errors"] == {"_body": [UNSTORABLE_TEXT]}


def test_an_escaped_but_storable_string_loads(client):
    response = client.post("/echo", data='{"name": "\\u6d17\\u0041"}', content_type="application/json")
    assert response.get_json()["data"] == {"name": "洗A", "count": 1}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_content_types_load(client, content_type):
    response = client.post("/echo/raw", data='{"name": "a"}', content_type=content_type)
    assert response.status_code == 200
    assert response.get_json()["data"] == {"body": {"name": "a", "count": 1}, "raw": '{"name": "a"}'}


@pytest.mark.parametrize(
    ("data", "content_type"), [('{"name": "a"}', "text/plain"), ("", "application/json")]
)
def test_a_body_that_is_not_json_or_empty_loads_as_no_fields(client, data, content_type):
    body = assert_envelope(client.post("/echo", data=data, content_type=content_type), 400)
    assert body["data"]["errors"] == {"name": ["Missing data for required field."]}


def test_unknown_fields_are_400(client):
    body = assert_envelope(client.post("/echo", json={"name": "a", "extra": 1}), 400)
    assert body["data"]["errors"] == {"extra": ["Unknown field."]}


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
    response = client.post("/echo", data="x" * (MAX_CONTENT_LENGTH + 1), content_type="application/json")
    assert_envelope(response, 413)


def test_an_oversized_chunked_body_is_413(client):
    """A body without Content-Length that fills the limit is refused, not cut and parsed as broken JSON."""
    body = io.BytesIO(b'{"name": "' + b"x" * MAX_CONTENT_LENGTH + b'"}')
    response = client.post(
        "/echo",
        input_stream=body,
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_envelope(response, 413)


def test_a_chunked_body_within_the_limit_loads(client):
    response = client.post(
        "/echo/raw",
        input_stream=io.BytesIO(b'{"name": "a"}'),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.get_json()["data"] == {"body": {"name": "a", "count": 1}, "raw": '{"name": "a"}'}


def test_request_id_is_generated_when_absent_or_unsafe(client):
    response = client.get("/no/such/path", headers={"X-Request-Id": "bad id; drop"})
    assert len(response.headers["X-Request-Id"]) == 32
