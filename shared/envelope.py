"""The one response shape of both services: ``{"code", "data", "message"}``.

Success is HTTP 200 with code 0; an error carries its HTTP status as ``code``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import marshmallow as ma

SUCCESS_MESSAGE = "success"

#: Default Chinese message for each status, used when an error names none.
STATUS_MESSAGES = {
    400: "请求参数错误",
    401: "API Key 无效或未提供",
    403: "权限不足",
    404: "资源不存在",
    405: "请求方法不允许",
    409: "资源冲突",
    413: "请求体过大",
    415: "不支持的媒体类型",
    429: "请求过于频繁",
    500: "服务器内部错误",
    502: "上游渠道错误",
    503: "服务暂不可用",
}


def ok(data: Any = None) -> dict[str, Any]:
    """Wrap ``data`` in the success envelope."""
    return {"code": 0, "data": data, "message": SUCCESS_MESSAGE}


def error_body(code: int, message: str | None = None, data: Any = None) -> dict[str, Any]:
    return {"code": code, "data": data, "message": message or STATUS_MESSAGES.get(code, "请求失败")}


class ApiError(Exception):
    """An error the API answers on purpose, with its HTTP status as code."""

    def __init__(
        self, code: int, message: str | None = None, data: Any = None, headers: dict | None = None
    ) -> None:
        self.code = code
        self.message = message or STATUS_MESSAGES.get(code, "请求失败")
        self.data = data
        self.headers = headers or {}
        super().__init__(f"{code} {self.message}")


class BadRequestError(ApiError):
    def __init__(self, message: str | None = None, data: Any = None, headers: dict | None = None) -> None:
        super().__init__(400, message, data, headers)


class UnauthorizedError(ApiError):
    def __init__(self, message: str | None = None, data: Any = None, headers: dict | None = None) -> None:
        super().__init__(401, message, data, headers)


class ForbiddenError(ApiError):
    def __init__(self, message: str | None = None, data: Any = None, headers: dict | None = None) -> None:
        super().__init__(403, message, data, headers)


class NotFoundError(ApiError):
    def __init__(self, message: str | None = None, data: Any = None, headers: dict | None = None) -> None:
        super().__init__(404, message, data, headers)


class ConflictError(ApiError):
    def __init__(self, message: str | None = None, data: Any = None, headers: dict | None = None) -> None:
        super().__init__(409, message, data, headers)


class TooManyRequestsError(ApiError):
    """429 with ``Retry-After`` in whole seconds."""

    def __init__(self, message: str | None = None, retry_after: int = 60, data: Any = None) -> None:
        super().__init__(429, message, data, {"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))


class UpstreamError(ApiError):
    """502: an upstream channel failed; ``data`` carries its code and message."""

    def __init__(self, message: str | None = None, data: Any = None, headers: dict | None = None) -> None:
        super().__init__(502, message, data, headers)


class ServiceUnavailableError(ApiError):
    def __init__(self, message: str | None = None, data: Any = None, headers: dict | None = None) -> None:
        super().__init__(503, message, data, headers)


class ErrorEnvelopeSchema(ma.Schema):
    """Documents every error answer in OpenAPI."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status of the error"})
    data = ma.fields.Raw(allow_none=True, metadata={"description": "Details, e.g. {errors: {...}}, or null"})
    message = ma.fields.String(required=True)


@cache
def envelope(schema: type[ma.Schema] | None = None, many: bool = False) -> type[ma.Schema]:
    """A schema for ``ok(data)`` whose ``data`` is ``schema`` (cached, so OpenAPI names it once)."""
    if schema is None:
        data_field = ma.fields.Raw(allow_none=True)
        name = "EmptyEnvelope"
    else:
        data_field = ma.fields.Nested(schema, many=many)
        name = schema.__name__.removesuffix("Schema") + ("ListEnvelope" if many else "Envelope")
    return ma.Schema.from_dict(
        {"code": ma.fields.Integer(), "data": data_field, "message": ma.fields.String()}, name=name
    )


@cache
def page_schema(item: type[ma.Schema]) -> type[ma.Schema]:
    """``{list, total, page, size}`` of ``item``, as the contract's lists are."""
    return ma.Schema.from_dict(
        {
            "list": ma.fields.List(ma.fields.Nested(item)),
            "total": ma.fields.Integer(),
            "page": ma.fields.Integer(),
            "size": ma.fields.Integer(),
        },
        name=item.__name__.removesuffix("Schema") + "Page",
    )
