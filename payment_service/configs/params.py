"""What a payment config's ``params`` must hold in each mode, and which of them are secrets.

Names follow the contract where it shows them (``service_mch_id``, ``sub_mch_id``, ``api_key``,
``profit_sharing``); the rest are what WeChat Pay API v3 and Alipay need. Keys are parsed here, at
save time, so a malformed key is a 400 naming its field instead of a failure at the first payment.
Profit-sharing ratios are exact decimals (``0.34 + 0.56 + 0.1`` is exactly 1).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma
from marshmallow import ValidationError, validate, validates_schema

from payment_service.channels.keys import KeyFormatError, load_private_key, load_public_key
from shared.envelope import BadRequestError

MODES = ("wechat_split", "wechat_direct", "alipay_direct")
MASK = "***"
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "wechat_split": ("api_key", "merchant_private_key"),
    "wechat_direct": ("api_key", "merchant_private_key"),
    "alipay_direct": ("app_private_key",),
}
# WeChat Pay's relation types for a profit-sharing receiver (CUSTOM needs custom_relation).
RELATION_TYPES = (
    "SERVICE_PROVIDER",
    "STORE",
    "STAFF",
    "STORE_OWNER",
    "PARTNER",
    "HEADQUARTER",
    "BRAND",
    "DISTRIBUTOR",
    "USER",
    "SUPPLIER",
    "CUSTOM",
)
MAX_RECEIVERS = 50  # WeChat splits an order among at most 50 receivers
# Finer than WeChat's 1/10000 granularity, coarse enough that sums stay exact in Decimal's 28 digits.
MAX_RATIO_PLACES = 8

REQUIRED = {"required": "必填", "null": "不能为空", "invalid": "必须是字符串"}


def _text(
    pattern: str | None = None, hint: str = "", max_length: int = 128, **kwargs: Any
) -> ma.fields.String:
    """A required string, optionally matching ``pattern``; every error message in Chinese."""
    validators: list[Any] = [
        validate.Length(min=1, max=max_length, error=f"长度必须在 1 到 {max_length} 之间")
    ]
    if pattern:
        validators.append(validate.Regexp(pattern, error=hint or "格式不正确"))
    kwargs.setdefault("required", True)
    return ma.fields.String(validate=validators, error_messages=REQUIRED, **kwargs)


def _reject_mask(value: str) -> None:
    if value == MASK:
        raise ValidationError("请提供真实值 (*** 只在更新时表示保留原值)")


def _private_key(value: str) -> None:
    _reject_mask(value)
    try:
        load_private_key(value)
    except KeyFormatError as exc:
        raise ValidationError(f"私钥无法解析: {exc}") from None


def _public_key(value: str) -> None:
    try:
        load_public_key(value)
    except KeyFormatError as exc:
        raise ValidationError(f"公钥无法解析: {exc}") from None


def _ratio_in_range(value: Decimal) -> None:
    if not 0 < value <= 1:
        raise ValidationError("分账比例必须大于 0 且不超过 1")
    if value.as_tuple().exponent < -MAX_RATIO_PLACES:
        raise ValidationError(f"分账比例最多 {MAX_RATIO_PLACES} 位小数")


MCH_ID = r"^\d{1,32}$"
MCH_ID_HINT = "商户号必须是数字"
APP_ID = r"^[A-Za-z0-9_-]{1,64}$"
APP_ID_HINT = "只能包含字母、数字、下划线和连字符"
API_V3_KEY = r"^[A-Za-z0-9]{32}$"
SERIAL_NO = r"^[A-Za-z0-9]{1,64}$"


def _api_v3_key() -> ma.fields.String:
    return ma.fields.String(
        required=True,
        error_messages=REQUIRED,
        validate=[_reject_mask, validate.Regexp(API_V3_KEY, error="APIv3 密钥必须是 32 位字母或数字")],
    )


PRIVATE_KEY_DOC = "RSA private key of at least 2048 bits, unencrypted: PKCS#8 or PKCS#1, PEM or bare base64"
PUBLIC_KEY_DOC = "RSA public key of at least 2048 bits (or an X.509 certificate): PEM or bare base64"


def _pem(validator, description: str) -> ma.fields.String:
    return ma.fields.String(
        required=True, error_messages=REQUIRED, validate=validator, metadata={"description": description}
    )


class _Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class ReceiverSchema(_Strict):
    """One profit-sharing receiver. ``receiver_type`` is the tenant's own label (platform, franchisee…)."""

    class Meta(_Strict.Meta):
        openapi = {
            "if": {"properties": {"relation_type": {"const": "CUSTOM"}}, "required": ["relation_type"]},
            "then": {"properties": {"custom_relation": {"type": "string"}}, "required": ["custom_relation"]},
        }

    receiver_type = _text(max_length=32)
    merchant_id = _text(r"^[A-Za-z0-9_-]{1,64}$", APP_ID_HINT, max_length=64)
    ratio = ma.fields.Decimal(
        required=True,
        allow_nan=False,
        validate=_ratio_in_range,
        error_messages={**REQUIRED, "invalid": '必须是数字 (如 0.15 或 "0.15")'},
        metadata={
            "description": f"In (0, 1], read as an exact decimal of at most {MAX_RATIO_PLACES} places",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "example": 0.15,
        },
    )
    name = _text(required=False, load_default=None, allow_none=True, max_length=128)
    relation_type = ma.fields.String(
        load_default="PARTNER", validate=validate.OneOf(RELATION_TYPES, error="不是微信支持的关系类型")
    )
    custom_relation = _text(required=False, load_default=None, allow_none=True, max_length=10)

    @validates_schema
    def _custom_needs_a_name(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("relation_type") == "CUSTOM" and not data.get("custom_relation"):
            raise ValidationError("relation_type 为 CUSTOM 时必须提供", "custom_relation")


class ProfitSharingSchema(_Strict):
    class Meta(_Strict.Meta):
        openapi = {
            "if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
            "then": {"properties": {"receivers": {"minItems": 1}}, "required": ["receivers"]},
            "description": "Ratios add up to at most 1; no merchant_id twice",
        }

    enabled = ma.fields.Boolean(required=True, error_messages={**REQUIRED, "invalid": "必须是 true 或 false"})
    type = ma.fields.String(load_default="ratio", validate=validate.OneOf(["ratio"], error="只支持 ratio"))
    receivers = ma.fields.List(
        ma.fields.Nested(ReceiverSchema),
        load_default=list,
        validate=validate.Length(max=MAX_RECEIVERS, error=f"最多 {MAX_RECEIVERS} 个分账接收方"),
    )

    @validates_schema
    def _ratios_add_up(self, data: dict[str, Any], **_kwargs: Any) -> None:
        receivers = data.get("receivers") or []
        if data.get("enabled") and not receivers:
            raise ValidationError("启用分账时至少需要一个分账接收方", "receivers")
        seen: set[str] = set()
        for receiver in receivers:
            if receiver["merchant_id"] in seen:
                raise ValidationError(f"分账接收方重复: {receiver['merchant_id']}", "receivers")
            seen.add(receiver["merchant_id"])
        total = sum((receiver["ratio"] for receiver in receivers), Decimal(0))
        if total > 1:
            raise ValidationError(f"分账比例之和为 {total},不能超过 1", "receivers")


def _profit_sharing_off() -> dict[str, Any]:
    return {"enabled": False, "type": "ratio", "receivers": []}


class _WechatSchema(_Strict):
    app_id = _text(APP_ID, APP_ID_HINT, max_length=64)
    api_key = _api_v3_key()
    merchant_serial_no = _text(SERIAL_NO, "证书序列号只能包含字母和数字", max_length=64)
    merchant_private_key = _pem(_private_key, PRIVATE_KEY_DOC)
    wechatpay_public_key_id = _text(max_length=128)
    wechatpay_public_key = _pem(_public_key, PUBLIC_KEY_DOC)


class WechatSplitParamsSchema(_WechatSchema):
    """wechat_split: a service provider (``service_mch_id``) takes payments for a sub-merchant."""

    service_mch_id = _text(MCH_ID, MCH_ID_HINT, max_length=32)
    sub_mch_id = _text(MCH_ID, MCH_ID_HINT, max_length=32)
    sub_app_id = _text(APP_ID, APP_ID_HINT, required=False, load_default=None, allow_none=True, max_length=64)
    profit_sharing = ma.fields.Nested(ProfitSharingSchema, load_default=_profit_sharing_off)

    @validates_schema
    def _transferred_receivers_are_named(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """WeChat transfers to a MERCHANT_ID receiver only with its full merchant name; the sub-merchant's
        own share is never transferred, so it needs none."""
        receivers = (data.get("profit_sharing") or {}).get("receivers") or []
        errors: dict[int, dict[str, list[str]]] = {}
        for index, receiver in enumerate(receivers):
            if receiver["merchant_id"] != data.get("sub_mch_id") and not receiver.get("name"):
                errors[index] = {"name": ["分账给其他商户时必须提供商户全称"]}
        if errors:
            raise ValidationError({"profit_sharing": {"receivers": errors}})


class WechatDirectParamsSchema(_WechatSchema):
    """wechat_direct: an ordinary merchant takes its own payments."""

    mch_id = _text(MCH_ID, MCH_ID_HINT, max_length=32)


class AlipayDirectParamsSchema(_Strict):
    """alipay_direct: keys as PEM or the bare base64 body Alipay's console shows."""

    app_id = _text(APP_ID, APP_ID_HINT, max_length=64)
    app_private_key = _pem(_private_key, PRIVATE_KEY_DOC)
    alipay_public_key = _pem(_public_key, PUBLIC_KEY_DOC)
    seller_id = _text(r"^\d{1,32}$", "卖家 ID 必须是数字", required=False, load_default=None, allow_none=True)


PARAMS_SCHEMAS: dict[str, type[ma.Schema]] = {
    "wechat_split": WechatSplitParamsSchema,
    "wechat_direct": WechatDirectParamsSchema,
    "alipay_direct": AlipayDirectParamsSchema,
}


def validate_params(mode: str, params: Any) -> dict[str, Any]:
    """The params of ``mode``, validated, ratios as Decimal; else 400 naming every faulty field."""
    if not isinstance(params, dict):
        raise BadRequestError(
            "请求参数错误: params 必须是 JSON 对象", {"errors": {"params": ["必须是 JSON 对象"]}}
        )
    try:
        return PARAMS_SCHEMAS[mode]().load(params)
    except ValidationError as exc:
        paths = sorted(error_paths(exc.messages, "params"))
        raise BadRequestError(
            "支付参数校验失败: " + ", ".join(paths), {"errors": {"params": exc.messages}}
        ) from None


def error_paths(messages: Any, prefix: str) -> list[str]:
    """Dotted paths of the fields marshmallow rejected (``params.profit_sharing.receivers.0.name``)."""
    if not isinstance(messages, dict):
        return [prefix]
    paths: list[str] = []
    for key, value in messages.items():
        path = prefix if key == "_schema" else f"{prefix}.{key}"
        paths.extend(error_paths(value, path))
    return paths


def split_secrets(mode: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(shown, secret)``: what may be stored and shown as is, and what must be sealed."""
    secret_names = SECRET_FIELDS[mode]
    shown = {name: value for name, value in params.items() if name not in secret_names}
    secret = {name: params[name] for name in secret_names if params.get(name) is not None}
    return shown, secret


def keep_stored_secrets(mode: str, params: Any, stored: dict[str, str]) -> Any:
    """On update a secret left out, null or sent as ``***`` keeps its stored value."""
    if not isinstance(params, dict):
        return params
    merged = dict(params)
    for name in SECRET_FIELDS[mode]:
        if merged.get(name) in (None, MASK) and name in stored:
            merged[name] = stored[name]
    return merged


def to_storable(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe params: ratios as decimal strings, so no float ever rounds them."""
    sharing = params.get("profit_sharing")
    if not sharing:
        return dict(params)
    receivers = [{**receiver, "ratio": str(receiver["ratio"])} for receiver in sharing["receivers"]]
    return {**params, "profit_sharing": {**sharing, "receivers": receivers}}


def from_storable(params: dict[str, Any]) -> dict[str, Any]:
    """Stored params with ratios back as exact Decimals."""
    sharing = params.get("profit_sharing")
    if not sharing:
        return dict(params)
    receivers = [{**receiver, "ratio": Decimal(receiver["ratio"])} for receiver in sharing["receivers"]]
    return {**params, "profit_sharing": {**sharing, "receivers": receivers}}
