"""``/api/v1/sms/records``: what became of each message (scope ``sms:send``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema
from sms_service import records
from sms_service.api.common import UtcTime
from sms_service.delivery import callbacks
from sms_service.extensions import db
from sms_service.mobiles import mask_mobile, normalise_mobile
from sms_service.models import STATUSES

blp = Blueprint("sms_records", __name__, url_prefix="/api/v1/sms/records", description="发送记录")


class CallbackAttemptSchema(ma.Schema):
    attempt = ma.fields.Integer()
    attempted_at = UtcTime()
    status_code = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)
    duration_ms = ma.fields.Integer()
    outcome = ma.fields.String(metadata={"description": "delivered, retry, gave_up or rejected"})


class CallbackStateSchema(ma.Schema):
    url = ma.fields.String(attribute="callback_url")
    status = ma.fields.String(
        attribute="callback_status", metadata={"description": "waiting, pending, delivered or failed"}
    )
    attempts_made = ma.fields.Integer(attribute="callback_attempts")
    next_attempt_at = UtcTime(attribute="callback_next_at")


class ChannelResponseSchema(ma.Schema):
    req_id = ma.fields.String(allow_none=True)
    biz_id = ma.fields.String(allow_none=True)


class RecordSchema(ma.Schema):
    message_id = ma.fields.String(attribute="id")
    template_id = ma.fields.String()
    batch_id = ma.fields.String(allow_none=True)
    mobile = ma.fields.Function(lambda message: mask_mobile(message.mobile), metadata={"type": "string"})
    status = ma.fields.String()
    provider = ma.fields.String(allow_none=True)
    channel_response = ma.fields.Function(
        lambda message: {"req_id": message.req_id, "biz_id": message.biz_id},
        metadata={
            "type": "object",
            "properties": {"req_id": {"type": "string"}, "biz_id": {"type": "string"}},
        },
    )
    error_code = ma.fields.String(allow_none=True)
    error_message = ma.fields.String(allow_none=True)
    created_at = UtcTime()
    sent_at = UtcTime(metadata={"description": "When the upstream accepted the message"})
    completed_at = UtcTime(metadata={"description": "When it reached success or failed"})
    callback = ma.fields.Function(
        lambda message: CallbackStateSchema().dump(message) if message.callback_url else None,
        metadata={"type": "object", "nullable": True},
    )


class RecordDetailSchema(RecordSchema):
    callback = ma.fields.Function(
        lambda message: _callback_detail(message), metadata={"type": "object", "nullable": True}
    )


def _callback_detail(message) -> dict | None:
    if not message.callback_url:
        return None
    state = CallbackStateSchema().dump(message)
    state["attempts"] = CallbackAttemptSchema(many=True).dump(callbacks.attempts_of(db.session, message.id))
    return state


class RecordSearchArgsSchema(PageArgsSchema):
    mobile = ma.fields.String(metadata={"description": "Full mobile (answers show it masked)"})
    status = ma.fields.String(validate=validate.OneOf(STATUSES, error="status 必须是 {choices} 之一"))
    template_id = ma.fields.String()
    batch_id = ma.fields.String()
    from_ = ma.fields.AwareDateTime(
        data_key="from", default_timezone=None, metadata={"description": "created_at ≥"}
    )
    to = ma.fields.AwareDateTime(metadata={"description": "created_at <"})

    @ma.validates("mobile")
    def _mobile(self, value: str, **_kwargs) -> None:
        if normalise_mobile(value) is None:
            raise ma.ValidationError("手机号格式不正确")

    @ma.post_load
    def _normalise(self, data, **_kwargs):
        if data.get("mobile"):
            data["mobile"] = normalise_mobile(data["mobile"])
        return data


@blp.route("")
class Records(MethodView):
    @require_scope("sms:send")
    @blp.arguments(RecordSearchArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(RecordSchema)))
    def get(self, args):
        """Search records, newest first"""
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
        )
        return ok({"list": rows, "total": total, "page": args["page"], "size": args["size"]})


@blp.route("/<message_id>")
class RecordById(MethodView):
    @require_scope("sms:send")
    @blp.response(200, envelope(RecordDetailSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, message_id):
        """One message: status, upstream ids, times, errors and its callback attempts"""
        return ok(records.get_record(db.session, current_principal().tenant_id, message_id))
