"""``/api/v1/sms/records``: what became of each message (scope ``sms:send``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema
from shared.webhooks import OUTCOMES
from sms_service import records
from sms_service.api.common import Itself, Mobile, UtcTime
from sms_service.delivery import callbacks
from sms_service.extensions import db
from sms_service.mobiles import mask_mobile
from sms_service.models import (
    CALLBACK_DELIVERED,
    CALLBACK_FAILED,
    CALLBACK_PENDING,
    CALLBACK_WAITING,
    STATUSES,
)

CALLBACK_STATUSES = (CALLBACK_WAITING, CALLBACK_PENDING, CALLBACK_DELIVERED, CALLBACK_FAILED)

blp = Blueprint("sms_records", __name__, url_prefix="/api/v1/sms/records", description="发送记录")


class CallbackAttemptSchema(ma.Schema):
    attempt = ma.fields.Integer()
    attempted_at = UtcTime()
    status_code = ma.fields.Integer(allow_none=True, metadata={"description": "null when no answer came"})
    error = ma.fields.String(allow_none=True)
    duration_ms = ma.fields.Integer()
    outcome = ma.fields.String(validate=validate.OneOf(OUTCOMES))


class CallbackStateSchema(ma.Schema):
    url = ma.fields.String(attribute="callback_url")
    status = ma.fields.String(attribute="callback_status", validate=validate.OneOf(CALLBACK_STATUSES))
    attempts_made = ma.fields.Integer(attribute="callback_attempts")
    next_attempt_at = UtcTime(attribute="callback_next_at", allow_none=True)


class CallbackAttempts(ma.fields.List):
    """A message's callback attempts, read from their table when one record is shown."""

    def __init__(self, **kwargs) -> None:
        super().__init__(ma.fields.Nested(CallbackAttemptSchema), dump_only=True, **kwargs)

    def get_value(self, obj, attr, accessor=None, default=ma.missing):
        return callbacks.attempts_of(db.session, obj.id)


class CallbackDetailSchema(CallbackStateSchema):
    attempts = CallbackAttempts()


class ChannelResponseSchema(ma.Schema):
    req_id = ma.fields.String(allow_none=True, metadata={"description": "The upstream's request id"})
    biz_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "The upstream's id of the message (Aliyun BizId, Tencent SerialNo)"},
    )


class RecordSchema(ma.Schema):
    message_id = ma.fields.String(attribute="id")
    template_id = ma.fields.String()
    batch_id = ma.fields.String(allow_none=True)
    mobile = ma.fields.Function(lambda message: mask_mobile(message.mobile), metadata={"type": "string"})
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    provider = ma.fields.String(
        allow_none=True,
        metadata={"description": "The upstream that took the message; test for a test key's simulated one"},
    )
    channel_response = Itself(ChannelResponseSchema)
    error_code = ma.fields.String(allow_none=True)
    error_message = ma.fields.String(allow_none=True)
    test = ma.fields.Boolean(
        metadata={"description": "Sent with a test key: simulated, never reached an upstream (provider test)"}
    )
    segments = ma.fields.Integer(
        metadata={
            "description": "Billed segments of the text with 【sign name】: 1 up to 70 characters, "
            "else ceil(length / 67)",
            "minimum": 1,
        }
    )
    created_at = UtcTime()
    sent_at = UtcTime(allow_none=True, metadata={"description": "When the upstream accepted the message"})
    completed_at = UtcTime(allow_none=True, metadata={"description": "When it reached success or failed"})
    callback = Itself(
        CallbackStateSchema, when="callback_url", metadata={"description": "null without a callback_url"}
    )


class RecordDetailSchema(RecordSchema):
    callback = Itself(
        CallbackDetailSchema, when="callback_url", metadata={"description": "null without a callback_url"}
    )


class RecordSearchArgsSchema(PageArgsSchema):
    mobile = Mobile(metadata={"description": "Full mobile (answers show it masked)"})
    status = ma.fields.String(validate=validate.OneOf(STATUSES, error="status 必须是 {choices} 之一"))
    template_id = ma.fields.String()
    batch_id = ma.fields.String()
    from_ = ma.fields.AwareDateTime(
        data_key="from", default_timezone=None, metadata={"description": "created_at ≥"}
    )
    to = ma.fields.AwareDateTime(metadata={"description": "created_at <"})


@blp.route("")
class Records(MethodView):
    @require_scope("sms:send")
    @blp.arguments(RecordSearchArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(RecordSchema)))
    @blp.doc(**operation("search_records"))
    def get(self, args):
        """Search records, newest first (a test key sees only test messages, a live key only live ones)"""
        rows, total = records.search_records(
            db.session,
            current_principal().tenant_id,
            args["page"],
            args["size"],
            mobile=args.get("mobile"),
            status=args.get("status"),
            template_id=args.get("template_id"),
            batch_id=args.get("batch_id"),
            created_from=args.get("from_"),
            created_to=args.get("to"),
            test=current_principal().test,
        )
        return ok({"list": rows, "total": total, "page": args["page"], "size": args["size"]})


@blp.route("/<message_id>")
class RecordById(MethodView):
    @require_scope("sms:send")
    @blp.response(200, envelope(RecordDetailSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("get_record"))
    def get(self, message_id):
        """One message: status, upstream ids, times, errors and its callback attempts"""
        principal = current_principal()
        return ok(records.get_record(db.session, principal.tenant_id, message_id, test=principal.test))
