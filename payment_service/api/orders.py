"""``POST /api/v1/payment/order``, ``GET /api/v1/payment/orders[/{id}]``, ``POST …/orders/{id}/close``
(scope ``payment:order``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from payment_service.configs import bindings
from payment_service.extensions import db
from payment_service.models import ORDER_STATUSES
from payment_service.orders import closing, placing
from payment_service.orders.views import created_view
from payment_service.settings import DEFAULTS
from shared.api import Blueprint, link, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema

blp = Blueprint(
    "payment_orders",
    __name__,
    url_prefix="/api/v1/payment",
    description="Payment orders routed by site and channel (WeChat Pay JSAPI, Alipay mini-program)",
)

CHANNELS = ("wechat", "alipay")
REQUIRED = {"required": "必填", "null": "不能为空"}
AMOUNT_DESCRIPTION = (
    "Yuan, > 0, at most 2 decimals, at most PAYMENT_MAX_AMOUNT (the maximum shown is its default; "
    "a JSON number or a string)"
)


# Far above any PAYMENT_MAX_AMOUNT; checking the decimals of larger numbers overflows Decimal's precision.
AMOUNT_CEILING = Decimal(10) ** 12


def _two_places(value: Decimal) -> None:
    if not value.is_finite():
        return
    if abs(value) >= AMOUNT_CEILING:
        raise ma.ValidationError("金额过大")
    if value != value.quantize(Decimal("0.01")):
        raise ma.ValidationError("金额最多两位小数")


def _positive(value: Decimal) -> None:
    if not value > 0:
        raise ma.ValidationError("金额必须大于 0")


def amount_field(example: float) -> ma.fields.Decimal:
    """An amount in yuan as the API takes it (orders and refunds alike)."""
    return ma.fields.Decimal(
        required=True,
        allow_nan=False,
        validate=[_positive, _two_places],
        error_messages={**REQUIRED, "invalid": "金额必须是数字", "special": "金额必须是有限的数字"},
        metadata={
            "description": AMOUNT_DESCRIPTION,
            "example": example,
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": float(DEFAULTS["MAX_AMOUNT"]),
            "multipleOf": 0.01,
        },
    )


def _length(low: int, high: int) -> validate.Length:
    return validate.Length(min=low, max=high, error=f"长度必须在 {low} 到 {high} 之间")


# Checked where the order's route is looked up (bindings.check_site_id); documented here.
SITE_ID_DOC = {"pattern": bindings.SITE_ID.pattern}


class OrderArgsSchema(ma.Schema):
    site_id = ma.fields.String(
        required=True, error_messages=REQUIRED, validate=_length(1, 64), metadata=SITE_ID_DOC
    )
    channel = ma.fields.String(
        required=True,
        error_messages=REQUIRED,
        validate=validate.OneOf(CHANNELS, error="channel 必须是 wechat 或 alipay"),
    )
    amount = amount_field(20.00)
    description = ma.fields.String(required=True, error_messages=REQUIRED, validate=_length(1, 127))
    payer_id = ma.fields.String(
        required=True,
        error_messages=REQUIRED,
        validate=_length(1, 128),
        metadata={
            "description": "WeChat: the payer's openid (of sub_app_id when set); Alipay: user id or open id"
        },
    )
    notify_url = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=_length(1, 1000),
        metadata={
            "description": "Where the signed payment.result is POSTed once paid (http/https, public host)",
            "pattern": "^https?://[^/?#:@\\s]+",
            "format": "uri",
        },
    )
    out_order_no = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_\-|*.@]{1,64}$", error="最多 64 位字母、数字或 _-|*.@"),
        metadata={
            "description": "The business's order number: the same number and amount → the same transaction"
        },
    )


class OrderListArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=validate.OneOf(ORDER_STATUSES, error="status 必须是 {choices} 之一"))
    site_id = ma.fields.String(validate=_length(1, 64))
    channel = ma.fields.String(validate=validate.OneOf(CHANNELS, error="channel 必须是 wechat 或 alipay"))
    created_from = ma.fields.AwareDateTime(
        data_key="from", default_timezone=None, metadata={"description": "Created at or after (ISO 8601)"}
    )
    created_to = ma.fields.AwareDateTime(
        data_key="to", default_timezone=None, metadata={"description": "Created before (ISO 8601)"}
    )


class OrderCreatedSchema(ma.Schema):
    transaction_id = ma.fields.String()
    channel = ma.fields.String()
    pay_params = ma.fields.Dict(
        metadata={
            "description": "WeChat: {appId, timeStamp, nonceStr, package, signType, paySign} "
            "for wx.requestPayment; Alipay: {tradeNO} for my.tradePay"
        }
    )
    out_order_no = ma.fields.String(allow_none=True)
    amount = ma.fields.Float(metadata={"description": "Yuan"})
    status = ma.fields.String(metadata={"enum": list(ORDER_STATUSES)})


class SharingReceiverSchema(ma.Schema):
    merchant_id = ma.fields.String()
    receiver_type = ma.fields.String()
    ratio = ma.fields.Float()
    amount = ma.fields.Float(
        metadata={"description": "Yuan; for the sub-merchant's own share, what it keeps"}
    )
    state = ma.fields.String(metadata={"enum": ["pending", "success", "closed", "retained", "skipped"]})
    fail_reason = ma.fields.String(allow_none=True)


class ProfitSharingStateSchema(ma.Schema):
    status = ma.fields.String(metadata={"enum": ["pending", "processing", "finished", "failed"]})
    out_order_no = ma.fields.String()
    attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    finished_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    receivers = ma.fields.List(ma.fields.Nested(SharingReceiverSchema))


class ForwardingStateSchema(ma.Schema):
    status = ma.fields.String(metadata={"enum": ["pending", "delivered", "failed"]})
    attempts = ma.fields.Integer()
    last_http_status = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    next_attempt_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    delivered_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})


class OrderSchema(ma.Schema):
    transaction_id = ma.fields.String()
    out_order_no = ma.fields.String(allow_none=True)
    site_id = ma.fields.String()
    channel = ma.fields.String()
    mode = ma.fields.String()
    config_id = ma.fields.String()
    amount = ma.fields.Float(metadata={"description": "Yuan"})
    refunded_amount = ma.fields.Float(metadata={"description": "Yuan refunded (successful refunds)"})
    refunding_amount = ma.fields.Float(metadata={"description": "Yuan reserved by refunds still processing"})
    description = ma.fields.String()
    status = ma.fields.String(metadata={"enum": list(ORDER_STATUSES)})
    channel_order_ref = ma.fields.String(
        allow_none=True, metadata={"description": "prepay_id / Alipay trade_no"}
    )
    channel_transaction_id = ma.fields.String(
        allow_none=True, metadata={"description": "Upstream payment id"}
    )
    upstream_error = ma.fields.Dict(allow_none=True)
    notify_url = ma.fields.String(allow_none=True)
    created_at = ma.fields.String(metadata={"format": "date-time"})
    expire_at = ma.fields.String(metadata={"format": "date-time"})
    paid_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    closed_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    profit_sharing = ma.fields.Nested(ProfitSharingStateSchema, allow_none=True)
    forwarding = ma.fields.Nested(ForwardingStateSchema, allow_none=True)


@blp.route("/order")
class PlaceOrder(MethodView):
    @require_scope("payment:order")
    @blp.arguments(OrderArgsSchema())
    @blp.response(200, envelope(OrderCreatedSchema))
    @blp.alt_response(409, response="CONFLICT", description="out_order_no reused with another amount")
    @blp.alt_response(
        502, response="DEFAULT_ERROR", description="Upstream error; data has its code and message"
    )
    @blp.doc(
        **operation(
            "create_order",
            GetOrder=link("get_order", transaction_id="transaction_id"),
            CloseOrder=link("close_order", transaction_id="transaction_id"),
            RefundOrder=link("create_refund", transaction_id="transaction_id"),
            ListRefunds=link("list_order_refunds", transaction_id="transaction_id"),
        )
    )
    def post(self, args: dict[str, Any]):
        """Place a payment order, routed by the site's binding for the channel"""
        order = placing.place_order(db.session, current_principal().tenant_id, placing.NewOrder(**args))
        return ok(created_view(order))


@blp.route("/orders")
class Orders(MethodView):
    @require_scope("payment:order")
    @blp.arguments(OrderListArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(OrderSchema)))
    @blp.doc(**operation("list_orders"))
    def get(self, args: dict[str, Any]):
        """List payment orders, newest first"""
        page, size = args.pop("page"), args.pop("size")
        items, total = placing.list_orders(
            db.session, current_principal().tenant_id, page=page, size=size, **args
        )
        return ok({"list": items, "total": total, "page": page, "size": size})


@blp.route("/orders/<transaction_id>")
class Order(MethodView):
    @require_scope("payment:order")
    @blp.response(200, envelope(OrderSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("get_order"))
    def get(self, transaction_id: str):
        """Show a payment order: status, amounts, upstream ids, profit sharing and forwarding state"""
        return ok(placing.order_detail(db.session, current_principal().tenant_id, transaction_id))


@blp.route("/orders/<transaction_id>/close")
class CloseOrder(MethodView):
    @require_scope("payment:order")
    @blp.response(200, envelope(OrderSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="The order is paid or refunded")
    @blp.alt_response(
        502, response="DEFAULT_ERROR", description="Upstream error; data has its code and message"
    )
    @blp.doc(**operation("close_order"))
    def post(self, transaction_id: str):
        """Close a pending order upstream (WeChat close, alipay.trade.close) and here; again: the same"""
        tenant_id = current_principal().tenant_id
        closing.close_order(db.session, tenant_id, transaction_id)
        return ok(placing.order_detail(db.session, tenant_id, transaction_id))
