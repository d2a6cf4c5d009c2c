"""A flask-smorest ``Api`` whose every error, expected or not, answers the envelope.

Covers unknown paths, wrong methods, malformed JSON, bodies that are not objects, webargs
validation (422 mapped to 400 with ``data.errors``), :class:`ApiError`, text the database cannot
store (NUL, lone surrogates) or JSON nested too deeply to parse (400), the database being unreachable
(503 with ``Retry-After``) and unexpected exceptions (500, logged with the request id, no internals in
the answer).
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import re
import secrets
from functools import wraps
from pathlib import Path

import flask_smorest
import flask_swagger_ui
import marshmallow as ma
from flask import Flask, g, jsonify, request, send_from_directory
from sqlalchemy import exc as sa_exc
from webargs import core
from webargs.flaskparser import FlaskParser, abort
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from shared.envelope import ApiError, BadRequestError, ErrorEnvelopeSchema, error_body

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_KEY_SCHEME = {"type": "apiKey", "in": "header", "name": "X-Api-Key"}

# Connection-level database failures: the request may succeed once the database is back.
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
UNSTORABLE_TEXT = "请求包含无法存储的字符 (NUL 或不成对的 UTF-16 代理项)"


class EnvelopeApi(flask_smorest.Api):
    ERROR_SCHEMA = ErrorEnvelopeSchema

    def init_app(self, app: Flask, *args, **kwargs) -> None:
        app.config.setdefault("OPENAPI_VERSION", "3.0.3")
        app.config.setdefault("OPENAPI_URL_PREFIX", "/")
        app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
        app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "/docs")
        app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/_static/swagger-ui/")
        app.config.setdefault("OPENAPI_REDOC_PATH", "/redoc")
        app.config.setdefault(
            "OPENAPI_REDOC_URL", "https://cdn.jsdelivr.net/npm/redoc@2.1.5/bundles/redoc.standalone.js"
        )
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


class FastLoad:
    """A schema that recognises plainly valid input on its own, without marshmallow's field machinery.

    ``fast_load(data)`` returns exactly what ``load`` would for that data, or None for anything it does not
    recognise as plainly valid; then the schema loads it as usual and reports its errors. The hot
    endpoints use it: loading four fields through marshmallow and webargs cost an accepted send more CPU
    than its INSERT. Each ``fast_load`` has a test comparing it with ``load``.
    """

    def fast_load(self, data) -> dict | None:
        """Recognises nothing: a schema that does not say otherwise loads everything itself."""
        return None


class _Parser(FlaskParser):
    """Validation errors are 400 (the contract's 请求参数错误), in the docs and in the answer; so are JSON
    bodies nested too deeply to parse and strings the database cannot store."""

    DEFAULT_VALIDATION_STATUS = 400

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type, ma.Schema] = {}

    def _get_schema(self, argmap, req):
        """One instance per schema class: webargs would build (and deep-copy the fields of) a new one on
        every request, which cost more than the parsing itself. Loading does not change an instance."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req):
        try:
            data = super()._raw_load_json(req)
        except RecursionError:
            abort(400, message="请求体 JSON 嵌套层级过深", messages={"json": ["JSON 嵌套层级过深"]})
        if data is not core.missing and _may_hold_unstorable(req) and _unstorable_anywhere(data):
            abort(400, message=UNSTORABLE_TEXT, messages={"json": [UNSTORABLE_TEXT]})
        return data


def _json_body(req):
    """The body as webargs would load it, for a request that plainly carries JSON; else None (then webargs
    loads it and reports what is wrong: not JSON, not UTF-8, unstorable text, nested too deep)."""
    environ = req.environ
    if environ.get("CONTENT_TYPE") != "application/json" and not req.is_json:
        return None
    raw = _read_body(req)
    if raw is None or _UNSTORABLE_ESCAPE.search(raw) is not None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def _read_body(req) -> bytes | None:
    """A body of known length within the limit, read straight from the WSGI input (werkzeug's stream
    wrappers cost more than the parsing); the input is replaced by the bytes read, so whatever reads the
    body later reads it the same. None where werkzeug must read it (chunked, too large, already read)."""
    environ = req.environ
    if "stream" in req.__dict__ or getattr(req, "_cached_data", None) is not None:
        return req.get_data(cache=True)
    length, limit = req.content_length, req.max_content_length
    if length is None or (limit is not None and length > limit):
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw if len(raw) == length else None


#: How the fast path reads each location: what webargs' loader gives, for the ``get`` a ``fast_load`` uses.
_FAST_LOCATIONS = {
    "json": _json_body,
    "headers": lambda req: req.headers,
    "query": lambda req: req.args,
    "querystring": lambda req: req.args,
}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()

    def arguments(self, schema, *, location="json", **kwargs):
        """flask-smorest's ``arguments`` (documented and parsed by webargs as usual), with a path in front for
        a :class:`FastLoad` schema: plainly valid input goes to the view without webargs.

        webargs' per-request work (its wrappers, the location loader's proxy, the hooks) cost an accepted send
        more than loading the arguments itself. Anything the schema's ``fast_load`` does not recognise takes
        webargs' path, so errors are unchanged (a test compares the two paths).
        """
        documented = super().arguments(schema, location=location, **kwargs)
        if isinstance(schema, type) and issubclass(schema, FastLoad):
            instance = self.ARGUMENTS_PARSER._get_schema(schema, None)  # the one webargs will use
        elif isinstance(schema, FastLoad):
            instance = schema
        else:
            return documented
        read = _FAST_LOCATIONS.get(location)
        plain_options = set(kwargs) <= {"content_type", "required", "description", "example", "examples"}
        if read is None or not plain_options or type(instance).fast_load is FastLoad.fast_load:
            return documented

        def decorator(func):
            parsed = documented(func)
            if inspect.iscoroutinefunction(func):
                return parsed

            @wraps(parsed)
            def wrapper(*args, **kw):
                data = read(request)
                loaded = None if data is None else instance.fast_load(data)
                if loaded is None:
                    return parsed(*args, **kw)
                return func(*args, loaded, **kw)

            return wrapper

        return decorator
