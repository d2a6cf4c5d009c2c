"""A flask-smorest ``Api`` whose every error, expected or not, answers the envelope.

Covers unknown paths, wrong methods, malformed JSON, bodies that are not objects, webargs
validation (422 mapped to 400 with ``data.errors``), :class:`ApiError`, text the database cannot
store (NUL, lone surrogates) or JSON nested too deeply to parse (400), the database being unreachable
(503 with ``Retry-After``) and unexpected exceptions (500, logged with the request id, no internals in
the answer).
"""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

import flask_smorest
import flask_swagger_ui
import marshmallow as ma
from apispec import BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask, g, jsonify, request, send_from_directory
from sqlalchemy import exc as sa_exc
from webargs.flaskparser import FlaskParser, abort
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from shared.envelope import ApiError, BadRequestError, ErrorEnvelopeSchema, error_body

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_KEY_SCHEME = {"type": "apiKey", "in": "header", "name": "X-Api-Key"}

# Connection-level database failures: the request may succeed once the database is back.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
UNSTORABLE_TEXT = "请求包含无法存储的字符 (NUL 或不成对的 UTF-16 代理项)"


class SchemaKeywords(BasePlugin):
    """Adds a schema's ``Meta.openapi`` keywords to its component: rules over the whole object that no field
    states (e.g. ``minProperties`` for an update that must change something)."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        if schema is None:
            return None
        meta = getattr(resolve_schema_cls(schema), "Meta", None)
        return dict(getattr(meta, "openapi", None) or {})

    def operation_helper(self, path=None, operations=None, **kwargs):
        """An operation documented with ``ONE_OR_MANY`` takes one item or an array of them, as some upstreams
        post: its ``many=True`` body becomes ``oneOf [item, array of items]``."""
        for operation in (operations or {}).values():
            if not operation.pop(ONE_OR_MANY, False):
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                many = media.get("schema", {})
                if many.get("type") == "array" and "items" in many:
                    media["schema"] = {"oneOf": [many["items"], many]}


#: ``@blp.doc(**{ONE_OR_MANY: True})``: see :meth:`SchemaKeywords.operation_helper`.
ONE_OR_MANY = "x-one-or-many"


class EnvelopeApi(flask_smorest.Api):
    ERROR_SCHEMA = ErrorEnvelopeSchema

    def init_app(self, app: Flask, *args, **kwargs) -> None:
        kwargs.setdefault("spec_kwargs", {}).setdefault("extra_plugins", [SchemaKeywords()])
        # 3.1 renders an optional nested object as anyOf [{$ref}, {type: null}], which generated clients read.
        app.config.setdefault("OPENAPI_VERSION", "3.1.0")
        app.config.setdefault("OPENAPI_URL_PREFIX", "/")
        app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
        app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "/docs")
        app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/_static/swagger-ui/")
        # One docs page, Swagger UI, whose assets the installed flask-swagger-ui serves: it works offline.
        # No ReDoc: no maintained package ships its bundle for Flask, and a CDN page is blank offline.
        spec_options = app.config.setdefault("API_SPEC_OPTIONS", {})
        spec_options.setdefault("security", [{"ApiKeyAuth": []}])
        spec_options.setdefault("components", {}).setdefault(
            "securitySchemes", {"ApiKeyAuth": API_KEY_SCHEME}
        )
        super().init_app(app, *args, **kwargs)
        _serve_swagger_ui_assets(app)
        app.before_request(_screen_request)
        app.after_request(_echo_request_id)
        app.register_error_handler(ApiError, handle_api_error)
        for error in DATABASE_UNAVAILABLE:
            app.register_error_handler(error, handle_database_unavailable)
        app.register_error_handler(Exception, handle_unexpected_error)

    def handle_http_exception(self, error: HTTPException):
        code = error.code or 500
        if isinstance(error, InternalServerError) and error.original_exception is not None:
            return handle_unexpected_error(error.original_exception)
        details = getattr(error, "data", None) or {}
        headers = dict(details.get("headers") or {})
        data = None
        message = details.get("message")
        errors = details.get("errors") or details.get("messages")
        if code == 422:
            code = 400
        if errors:
            data = {"errors": _flatten_locations(errors)}
            message = message or _describe_validation(data["errors"])
        if code == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(error.valid_methods)
        response = jsonify(error_body(code, message, data))
        response.status_code = code
        response.headers.update(headers)
        return response


def handle_api_error(error: ApiError):
    response = jsonify(error_body(error.code, error.message, error.data))
    response.status_code = error.code
    response.headers.update(error.headers)
    return response


def handle_database_unavailable(error: Exception):
    """503, not 500: the database is down or restarting. Logged without the statement's parameters."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    logger.warning(
        "database unavailable (request_id=%s): %s: %s",
        getattr(g, "request_id", None),
        type(error).__name__,
        reason[0][:200] if reason else "",
    )
    response = jsonify(error_body(503, "服务暂不可用: 数据库无法连接, 请稍后重试"))
    response.status_code = 503
    response.headers["Retry-After"] = "1"
    return response


def handle_unexpected_error(error: Exception):
    logger.exception("unhandled error (request_id=%s)", getattr(g, "request_id", None))
    response = jsonify(error_body(500, data={"request_id": getattr(g, "request_id", None)}))
    response.status_code = 500
    return response


def _flatten_locations(errors: dict) -> dict:
    """webargs nests errors by location (``json``, ``query``); tenants want the field names."""
    if set(errors) <= {"json", "query", "form", "headers", "path", "files", "view_args", "cookies"}:
        flat: dict = {}
        for location_errors in errors.values():
            if isinstance(location_errors, dict):
                flat.update(location_errors)
            else:
                flat.setdefault("_body", []).extend(location_errors)
        return flat
    return errors


def _describe_validation(errors: dict) -> str:
    if "_schema" in errors or "_body" in errors:
        return "请求体必须是 JSON 对象"
    return "请求参数错误: " + ", ".join(sorted(str(name) for name in errors))


def _screen_request() -> None:
    """Before any view: the request's id, then refuse a URL the database cannot store or a body too large.
    (One hook, not three: each hook costs every request a dispatch.)"""
    supplied = request.environ.get("HTTP_X_REQUEST_ID", "")
    g.request_id = supplied if _REQUEST_ID.match(supplied) else secrets.token_hex(16)
    _refuse_unstorable_url()
    _refuse_oversized_stream()


def unstorable(text: str) -> bool:
    """NUL (PostgreSQL text cannot hold it) or a lone surrogate (not encodable as UTF-8)."""
    return "\x00" in text or not text.isascii() and any("\ud800" <= char <= "\udfff" for char in text)


def _unstorable_anywhere(value) -> bool:
    """Any string in a parsed JSON document, keys included; iterative, so depth cannot overflow the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if unstorable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# In a body that parses (UTF-8, decoded strictly), NUL and surrogates can only be written as escapes.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _may_hold_unstorable(req) -> bool:
    """A cheap look at the raw body first: walking every string of a 1,000-item batch cost it 10 ms."""
    return _UNSTORABLE_ESCAPE.search(req.get_data(cache=True)) is not None


def _refuse_unstorable_url() -> None:
    if unstorable(request.path) or (
        request.environ.get("QUERY_STRING")
        and any(unstorable(name) or unstorable(value) for name, value in request.args.items(multi=True))
    ):
        raise BadRequestError(UNSTORABLE_TEXT)


def _refuse_oversized_stream() -> None:
    """A chunked body (no Content-Length) is cut at MAX_CONTENT_LENGTH by werkzeug without an error, which
    would parse as broken JSON; a body that fills the limit is refused as too large instead."""
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return
    limit = request.max_content_length
    if limit is not None and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()


def _echo_request_id(response):
    request_id = getattr(g, "request_id", None)
    if request_id:
        response.headers["X-Request-Id"] = request_id
    return response


def _serve_swagger_ui_assets(app: Flask) -> None:
    """Serve Swagger UI from the installed package so ``/docs`` works offline."""
    dist = Path(flask_swagger_ui.__file__).parent / "dist"

    def swagger_ui_asset(filename: str):
        return send_from_directory(dist, filename, max_age=86400)

    app.add_url_rule("/_static/swagger-ui/<path:filename>", "swagger_ui_asset", swagger_ui_asset)


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, answering as the contract does: validation errors are 400 (请求参数错误), in the
    docs and in the answer; so are JSON bodies nested too deeply to parse and strings the database cannot
    store, refused here once for every schema."""

    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req, schema):
        try:
            data = super().load_json(req, schema)
        except RecursionError:
            abort(400, message="请求体 JSON 嵌套层级过深", messages={"json": ["JSON 嵌套层级过深"]})
        if data is not ma.missing and _may_hold_unstorable(req) and _unstorable_anywhere(data):
            abort(400, message=UNSTORABLE_TEXT, messages={"json": [UNSTORABLE_TEXT]})
        return data


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint with :class:`ArgumentsParser`. Pass ``arguments`` a schema instance: webargs
    builds a new one per request from a class, and loading does not change an instance."""

    ARGUMENTS_PARSER = ArgumentsParser()


def link(operation_id: str, **parameters: str) -> dict:
    """An OpenAPI link to ``operation_id``, each of its parameters taken from the answer's ``data`` field
    named by the keyword's value (a JSON pointer below ``data``), or given as a runtime expression
    (``$request.path.site_id``)."""
    return {
        "operationId": operation_id,
        "parameters": {
            name: source if source.startswith("$") else f"$response.body#/data/{source}"
            for name, source in parameters.items()
        },
    }


def operation(operation_id: str, **links: dict) -> dict:
    """``blp.doc`` keywords naming an operation and linking its 200 answer to the operations that take its
    ids, so that a reader, a generated client or a stateful tester sees which id goes where."""
    doc: dict = {"operationId": operation_id}
    if links:
        doc["responses"] = {200: {"links": links}}
    return doc
