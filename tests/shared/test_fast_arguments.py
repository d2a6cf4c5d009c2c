"""A FastLoad schema's arguments skip webargs when plainly valid: the view gets what webargs would give it,
and everything else answers exactly as through webargs."""

from __future__ import annotations

import json

import marshmallow as ma
import pytest
from flask import jsonify, request
from flask.views import MethodView

from shared.api import Blueprint, FastLoad, _Parser
from tests.shared.envelope_apps import envelope_app


class BodySchema(FastLoad, ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=10))
    tags = ma.fields.List(ma.fields.String(), load_default=list)

    def fast_load(self, data):
        if type(data) is not dict or not data.keys() <= {"name", "tags"}:
            return None
        name, tags = data.get("name"), data.get("tags", [])
        if type(name) is str and 1 <= len(name) <= 10 and type(tags) is list:
            if all(type(tag) is str for tag in tags):
                return {"name": name, "tags": list(tags)}
        return None


class HeaderSchema(FastLoad, ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    token = ma.fields.String(data_key="X-Token", load_default=None)

    def fast_load(self, data):
        token = data.get("X-Token")
        return {"token": token} if token is None or type(token) is str else None


class QuerySchema(FastLoad, ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=99))

    def fast_load(self, data):
        page = data.get("page")
        if page is None:
            return {"page": 1}
        if type(page) is str and page.isascii() and page.isdigit() and 1 <= int(page) <= 99:
            return {"page": int(page)}
        return None


@pytest.fixture
def client():
    app, api = envelope_app("fast-arguments-test", max_content_length=4096)
    blp = Blueprint("fast", __name__, url_prefix="/fast")

    @blp.route("")
    class Echo(MethodView):
        @blp.arguments(HeaderSchema, location="headers")
        @blp.arguments(QuerySchema, location="query")
        @blp.arguments(BodySchema)
        def post(self, headers, query, body):
            # The body stays readable after the arguments were loaded, whichever way.
            return jsonify(
                {"headers": headers, "query": query, "body": body, "raw": request.get_data(as_text=True)}
            )

    api.register_blueprint(blp)
    return app.test_client()


REQUESTS = [
    {"json": {"name": "a"}},
    {"json": {"name": "洗衣", "tags": ["x", "y"]}, "headers": {"X-Token": "t1"}, "query_string": "page=3"},
    {"json": {"name": ""}},
    {"json": {"name": "a" * 11}},
    {"json": {"name": "a", "extra": 1}},
    {"json": {"name": "a", "tags": [1]}},
    {"json": ["name"]},
    {"json": "a"},
    {"json": None},
    {"data": "{not json", "content_type": "application/json"},
    {"data": '{"name": "a"}', "content_type": "text/plain"},
    {"data": '{"name": "a"}'.encode("utf-16"), "content_type": "application/json"},
    {"data": b'{"name": "\xff"}', "content_type": "application/json"},
    {"data": '{"name": "a\\u0000"}', "content_type": "application/json"},
    {"data": '{"name": "\\ud800"}', "content_type": "application/json"},
    {"data": "[" * 5000 + "]" * 5000, "content_type": "application/json"},
    {"data": "", "content_type": "application/json"},
    {"json": {"name": "a"}, "query_string": "page=0"},
    {"json": {"name": "a"}, "query_string": "page=x"},
    {"json": {"name": "a"}, "query_string": "page=2&page=5&other=1"},
    {"json": {"name": "a"}, "headers": {"X-Token": "é"}},
    {"json": {"name": "a", "tags": ["t" * 5000]}},  # over MAX_CONTENT_LENGTH: 413 either way
    {"json": {"name": "a"}, "content_type": "application/json; charset=utf-8"},
    {"json": {"name": "a"}, "content_type": "application/merge-patch+json"},
]


def answers(client, request: dict) -> tuple[int, object]:
    response = client.post("/fast", **request)
    return response.status_code, response.get_json()


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda request: json.dumps(request, default=str)[:60])
def test_the_fast_path_answers_as_webargs_does(client, monkeypatch, request_):
    fast = answers(client, request_)
    for schema in (BodySchema, HeaderSchema, QuerySchema):  # every argument through webargs
        monkeypatch.setattr(schema, "fast_load", lambda self, data: None)
    assert fast == answers(client, request_)


def test_plainly_valid_arguments_do_not_go_through_webargs(client, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("webargs parsed a plainly valid argument")

    monkeypatch.setattr(_Parser, "parse", refuse)
    status, body = answers(
        client, {"json": {"name": "a", "tags": ["t"]}, "headers": {"X-Token": "k"}, "query_string": "page=2"}
    )
    assert status == 200
    assert body == {
        "headers": {"token": "k"},
        "query": {"page": 2},
        "body": {"name": "a", "tags": ["t"]},
        "raw": '{"name": "a", "tags": ["t"]}',
    }
