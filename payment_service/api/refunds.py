"""``POST/GET /api/v1/payment/orders/{id}/refunds``, ``GET /api/v1/payment/refunds/{id}`` (scope
``payment:order``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from payment_service.api.orders import ForwardingStateSchema, amount_field
from payment_service.extensions import db
from payment_service.models import REFUND_STATUSES
from payment_service.refunds import creating
from payment_service.refunds.views import created_view
from shared.api import Blueprint, link, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema

blp = Blueprint(
    "payment_refunds",
    __name__,
    url_prefix="/api/v1/payment",
    description="Refunds of paid orders (full or partial; WeChat Pay and Alipay)",
)


def _reason_bytes(value: str) -> None:
    if len(value.encode("utf-8")) > creating.MAX_REASON_BYTES:
        raise ma.ValidationError(f"退款原因最多 {creating.MAX_REASON_BYTES} 字节(UTF-8)")


class RefundArgsSchema(ma.Schema):
    amount = amount_field(5.00)
    reason = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=_reason_bytes,
        metadata={"description": "Shown to the payer; at most 80 bytes of UTF-8", "example": "洗衣机故障"},
    )
    out_refund_no = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_\-|*@]{1,64}$", error="最多 64 位字母、数字或 _-|*@"),
        metadata={
            "description": "The business's refund number: the same number and amount → the same refund",
            "example": "R-20260510-0001",
        },
    )
    notify_url = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=1000, error="长度必须在 1 到 1000 之间"),
        metadata={
            "description": "Where payment.refund is POSTed once settled (default: the order's)",
            "pattern": "^https?://[^/?#:@\\s]+",
            "format": "uri",
        },
    )


class RefundCreatedSchema(ma.Schema):
    refund_id = ma.fields.String()
    transaction_id = ma.fields.String()
    out_refund_no = ma.fields.String(allow_none=True)
    amount = ma.fields.Float(metadata={"description": "Yuan"})
    status = ma.fields.String(metadata={"enum": list(REFUND_STATUSES)})
    reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.String(metadata={"format": "date-time"})


class ReturnLineSchema(ma.Schema):
    merchant_id = ma.fields.String()
    amount = ma.fields.Float(metadata={"description": "Yuan taken back from this receiver"})
    status = ma.fields.String(metadata={"enum": ["pending", "processing", "success", "failed"]})
    fail_reason = ma.fields.String(allow_none=True)


class RefundSchema(RefundCreatedSchema):
    out_order_no = ma.fields.String(allow_none=True)
    channel = ma.fields.String()
    channel_refund_id = ma.fields.String(allow_none=True, metadata={"description": "WeChat refund_id"})
    upstream_status = ma.fields.String(allow_none=True)
    error_code = ma.fields.String(allow_none=True, metadata={"description": "e.g. REFUND_ABNORMAL"})
    upstream_error = ma.fields.Dict(allow_none=True)
    notify_url = ma.fields.String(allow_none=True)
    updated_at = ma.fields.String(metadata={"format": "date-time"})
    success_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    forwarding = ma.fields.Nested(ForwardingStateSchema, allow_none=True)
    profit_sharing_returns = ma.fields.List(
        ma.fields.Nested(ReturnLineSchema), metadata={"description": "wechat_split only"}
    )


@blp.route("/orders/<transaction_id>/refunds")
class OrderRefunds(MethodView):
    @require_scope("payment:order")
    @blp.arguments(RefundArgsSchema())
    @blp.response(200, envelope(RefundCreatedSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="Not paid, or out_refund_no reused")
    @blp.alt_response(
        502, response="DEFAULT_ERROR", description="Upstream error; data has its code and message"
    )
    @blp.doc(**operation("create_refund", GetRefund=link("get_refund", refund_id="refund_id")))
    def post(self, args: dict[str, Any], transaction_id: str):
        """Refund (part of) a paid order; data.refundable tells what is left when the amount is too high"""
        refund = creating.request_refund(
            db.session, current_principal().tenant_id, transaction_id, creating.NewRefund(**args)
        )
        return ok(created_view(refund))

    @require_scope("payment:order")
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(RefundSchema)))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("list_order_refunds"))
    def get(self, args: dict[str, Any], transaction_id: str):
        """List an order's refunds, newest first"""
        page, size = args["page"], args["size"]
        items, total = creating.list_refunds(
            db.session, current_principal().tenant_id, transaction_id, page=page, size=size
        )
        return ok({"list": items, "total": total, "page": page, "size": size})


@blp.route("/refunds/<refund_id>")
class RefundDetail(MethodView):
    @require_scope("payment:order")
    @blp.response(200, envelope(RefundSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("get_refund"))
    def get(self, refund_id: str):
        """Show a refund: status, amount, upstream ids and errors, profit-sharing returns, forwarding"""
        return ok(creating.refund_detail(db.session, current_principal().tenant_id, refund_id))
