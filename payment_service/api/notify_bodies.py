"""The notifications' request bodies and headers as WeChat Pay and Alipay send them, for the OpenAPI
document only: the channels read the raw bodies, because the signatures cover the exact bytes."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from payment_service.channels.alipay_gateway import YUAN_AMOUNT
from payment_service.channels.wechat.signing import SIGNATURE_SCHEME

TRADE_STATUSES = ("WAIT_BUYER_PAY", "TRADE_CLOSED", "TRADE_SUCCESS", "TRADE_FINISHED")
WECHAT_EVENTS = ("TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED")
# Alipay's times: Beijing time, "yyyy-MM-dd HH:mm:ss"
ALIPAY_TIME = validate.Regexp(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class WechatResourceSchema(ma.Schema):
    """The encrypted notice: AES-256-GCM under the merchant's APIv3 key."""

    algorithm = ma.fields.String(required=True, validate=validate.OneOf(["AEAD_AES_256_GCM"]))
    ciphertext = ma.fields.String(required=True, metadata={"description": "base64"})
    nonce = ma.fields.String(required=True)
    associated_data = ma.fields.String(metadata={"example": "transaction"})
    original_type = ma.fields.String(required=True, metadata={"example": "transaction"})


class WechatNotificationSchema(ma.Schema):
    id = ma.fields.String(required=True)
    create_time = ma.fields.String(
        required=True, metadata={"format": "date-time", "example": "2026-05-10T10:00:05+08:00"}
    )
    event_type = ma.fields.String(
        required=True,
        validate=validate.OneOf(WECHAT_EVENTS),
        metadata={"description": "TRANSACTION.SUCCESS for a payment, REFUND.* for a refund"},
    )
    resource_type = ma.fields.String(required=True, validate=validate.OneOf(["encrypt-resource"]))
    resource = ma.fields.Nested(WechatResourceSchema, required=True)
    summary = ma.fields.String(required=True, metadata={"example": "支付成功"})


class AlipayNotificationSchema(ma.Schema):
    """The form Alipay posts: the fields read here; the many others it sends (buyer, subject, amounts, fund
    bills …) are signed too, and ignored."""

    class Meta:
        unknown = ma.INCLUDE

    notify_id = ma.fields.String(required=True)
    notify_time = ma.fields.String(
        required=True, validate=ALIPAY_TIME, metadata={"example": "2026-05-10 10:00:05"}
    )
    notify_type = ma.fields.String(required=True, metadata={"example": "trade_status_sync"})
    app_id = ma.fields.String(required=True)
    sign_type = ma.fields.String(required=True, validate=validate.OneOf(["RSA2"]))
    sign = ma.fields.String(
        required=True, metadata={"description": "base64 RSA2 signature of the other fields"}
    )
    out_trade_no = ma.fields.String(required=True, metadata={"description": "The transaction_id"})
    trade_no = ma.fields.String(required=True, metadata={"description": "Alipay's trade number"})
    trade_status = ma.fields.String(required=True, validate=validate.OneOf(TRADE_STATUSES))
    total_amount = ma.fields.String(
        required=True, validate=validate.Regexp(YUAN_AMOUNT.pattern), metadata={"example": "20.00"}
    )
    seller_id = ma.fields.String()
    charset = ma.fields.String(required=True, metadata={"example": "utf-8"})
    version = ma.fields.String(required=True, metadata={"example": "1.0"})
    gmt_payment = ma.fields.String(validate=ALIPAY_TIME, metadata={"example": "2026-05-10 10:00:05"})


WECHAT_HEADERS = [
    {"in": "header", "name": name, "required": True, "schema": {"type": "string"}, "description": text}
    for name, text in (
        ("Wechatpay-Timestamp", "Unix seconds"),
        ("Wechatpay-Nonce", "Random string"),
        ("Wechatpay-Signature", "base64 RSA-SHA256 signature of timestamp, nonce and body"),
        ("Wechatpay-Serial", "The WeChat Pay public key id (PUB_KEY_ID_…) or platform certificate serial"),
    )
] + [
    {
        "in": "header",
        "name": "Wechatpay-Signature-Type",
        "required": False,
        "schema": {"type": "string", "enum": [SIGNATURE_SCHEME]},
        "description": "The signature's scheme, when sent",
    }
]

WECHAT_NOTICE = {
    "parameters": WECHAT_HEADERS,
    "requestBody": {"required": True, "content": {"application/json": {"schema": WechatNotificationSchema}}},
}
ALIPAY_NOTICE = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": AlipayNotificationSchema}},
    }
}
