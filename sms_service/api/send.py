"""``POST /api/v1/sms/send`` and ``POST /api/v1/sms/batch-send`` (scope ``sms:send``)."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint, link, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok
from sms_service.accepting import sending
from sms_service.api.common import IDEMPOTENCY_KEY, idempotency_header
from sms_service.extensions import db
from sms_service.mobiles import MOBILE_PATTERN
from sms_service.models import QUEUED

blp = Blueprint("sms_send", __name__, url_prefix="/api/v1/sms", description="发送短信")

CALLBACK_URL = ma.fields.String(
    load_default=None,
    allow_none=True,
    validate=validate.Length(min=1, max=1000),
    metadata={
        "description": "http(s) URL on a public address that receives the signed sms.result callback "
        "of each message",
        "format": "uri",
        "pattern": "^https?://",
    },
)


def mobile_field(**kwargs) -> ma.fields.String:
    """Checked by sending.normalise_mobiles (it names the index of each bad or repeated number); documented
    here."""
    return ma.fields.String(metadata={"pattern": MOBILE_PATTERN, "example": "13800138000"}, **kwargs)


# Any values: the template checks those it names (templates.check_variables), and a JSON object's
# keys are strings. A field per key and per value checked nothing more and was half a batch's load.
VARIABLES = ma.fields.Dict(
    load_default=dict,
    metadata={
        "description": "The template's variables by name: strings or numbers of at most 35 characters",
        "additionalProperties": {"type": ["string", "number", "null"]},
    },
)


class SendArgsSchema(ma.Schema):
    template_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=40))
    mobiles = ma.fields.List(
        mobile_field(),
        required=True,
        metadata={
            "description": "1–100 mainland mobiles (+86/0086/86 prefixes accepted), no number twice",
            "minItems": 1,
            "maxItems": 100,
            "uniqueItems": True,
        },
    )
    variables = VARIABLES
    callback_url = CALLBACK_URL


class SendResultSchema(ma.Schema):
    message_id = ma.fields.String(metadata={"description": "The first message's id"})
    message_ids = ma.fields.List(
        ma.fields.String(), metadata={"description": "One per mobile, in request order"}
    )
    status = ma.fields.String(validate=validate.OneOf([QUEUED]))


class BatchItemSchema(ma.Schema):
    mobile = mobile_field(required=True)
    variables = VARIABLES


class BatchSendArgsSchema(ma.Schema):
    template_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=40))
    items = ma.fields.List(
        ma.fields.Nested(BatchItemSchema),
        required=True,
        metadata={"description": "1–1,000 items, no mobile twice", "minItems": 1, "maxItems": 1000},
    )
    callback_url = CALLBACK_URL


class BatchAcceptedSchema(ma.Schema):
    batch_id = ma.fields.String()
    total = ma.fields.Integer()
    status = ma.fields.String(validate=validate.OneOf([QUEUED]))


@blp.route("/send")
class Send(MethodView):
    @require_scope("sms:send")
    @blp.doc(
        **operation("send", GetRecord=link("get_record", message_id="message_id")), **idempotency_header()
    )
    @blp.arguments(SendArgsSchema())
    @blp.response(200, envelope(SendResultSchema))
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown template")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Daily quota or per-mobile frequency")
    def post(self, args):
        """Send one template to 1–100 mobiles: one message per mobile"""
        return ok(
            sending.send(
                db.session,
                current_principal().tenant_id,
                args["template_id"],
                args["mobiles"],
                args["variables"],
                args["callback_url"],
                request.headers.get(IDEMPOTENCY_KEY),
                test=current_principal().test,
            )
        )


@blp.route("/batch-send")
class BatchSend(MethodView):
    @require_scope("sms:send")
    @blp.doc(
        **operation("batch_send", GetBatch=link("get_batch", batch_id="batch_id")), **idempotency_header()
    )
    @blp.arguments(BatchSendArgsSchema())
    @blp.response(200, envelope(BatchAcceptedSchema))
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown template")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Daily quota or per-mobile frequency")
    def post(self, args):
        """Send one template to many mobiles, each with its own variables"""
        return ok(
            sending.batch_send(
                db.session,
                current_principal().tenant_id,
                args["template_id"],
                args["items"],
                args["callback_url"],
                request.headers.get(IDEMPOTENCY_KEY),
                test=current_principal().test,
            )
        )
