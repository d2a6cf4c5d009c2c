"""``POST /api/v1/sms/send`` and ``POST /api/v1/sms/batch-send`` (scope ``sms:send``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok
from sms_service.accepting import sending
from sms_service.api.common import IdempotencyHeaderSchema
from sms_service.extensions import db

blp = Blueprint("sms_send", __name__, url_prefix="/api/v1/sms", description="发送短信")

CALLBACK_URL = ma.fields.String(
    load_default=None,
    allow_none=True,
    validate=validate.Length(min=1, max=1000),
    metadata={"description": "http(s) URL that receives the signed sms.result callback of each message"},
)
# Any values: the template checks those it names (templates.check_variables), and a JSON object's
# keys are strings. A field per key and per value checked nothing more and was half a batch's load.
VARIABLES = ma.fields.Dict(load_default=dict, metadata={"additionalProperties": {"nullable": True}})


class SendArgsSchema(ma.Schema):
    template_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=40))
    mobiles = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "1–100 mainland mobiles (+86/0086/86 prefixes accepted), no duplicates"},
    )
    variables = VARIABLES
    callback_url = CALLBACK_URL


class SendResultSchema(ma.Schema):
    message_id = ma.fields.String(metadata={"description": "The first message's id"})
    message_ids = ma.fields.List(
        ma.fields.String(), metadata={"description": "One per mobile, in request order"}
    )
    status = ma.fields.String()


class BatchItemSchema(ma.Schema):
    mobile = ma.fields.String(required=True)
    variables = VARIABLES


class BatchSendArgsSchema(ma.Schema):
    template_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=40))
    items = ma.fields.List(ma.fields.Nested(BatchItemSchema), required=True)
    callback_url = CALLBACK_URL


class BatchAcceptedSchema(ma.Schema):
    batch_id = ma.fields.String()
    total = ma.fields.Integer()
    status = ma.fields.String()


@blp.route("/send")
class Send(MethodView):
    @require_scope("sms:send")
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.arguments(SendArgsSchema())
    @blp.response(200, envelope(SendResultSchema))
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown template")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Daily quota or per-mobile frequency")
    def post(self, headers, args):
        """Send one template to 1–100 mobiles: one message per mobile"""
        return ok(
            sending.send(
                db.session,
                current_principal().tenant_id,
                args["template_id"],
                args["mobiles"],
                args["variables"],
                args["callback_url"],
                headers["idempotency_key"],
            )
        )


@blp.route("/batch-send")
class BatchSend(MethodView):
    @require_scope("sms:send")
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.arguments(BatchSendArgsSchema())
    @blp.response(200, envelope(BatchAcceptedSchema))
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown template")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Daily quota or per-mobile frequency")
    def post(self, headers, args):
        """Send one template to many mobiles, each with its own variables"""
        return ok(
            sending.batch_send(
                db.session,
                current_principal().tenant_id,
                args["template_id"],
                args["items"],
                args["callback_url"],
                headers["idempotency_key"],
            )
        )
