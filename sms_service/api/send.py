"""``POST /api/v1/sms/send`` and ``POST /api/v1/sms/batch-send`` (scope ``sms:send``)."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint, FastLoad
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok
from sms_service import sending
from sms_service.api.common import IdempotencyHeaderSchema
from sms_service.extensions import db

blp = Blueprint("sms_send", __name__, url_prefix="/api/v1/sms", description="发送短信")

CALLBACK_URL = ma.fields.String(
    load_default=None,
    allow_none=True,
    validate=validate.Length(min=1, max=1000),
    metadata={"description": "http(s) URL that receives the signed sms.result callback of each message"},
)
VARIABLES = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(allow_none=True), load_default=dict)


class SendArgsSchema(FastLoad, ma.Schema):
    template_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=40))
    mobiles = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "1–100 mainland mobiles (+86/0086/86 prefixes accepted), no duplicates"},
    )
    variables = VARIABLES
    callback_url = CALLBACK_URL

    def fast_load(self, data) -> dict | None:
        if type(data) is not dict or not data.keys() <= self.fields.keys():
            return None
        template_id, mobiles = data.get("template_id"), data.get("mobiles")
        variables, callback_url = data.get("variables", {}), data.get("callback_url")
        if (
            type(template_id) is str
            and 1 <= len(template_id) <= 40
            and type(mobiles) is list
            and all(type(mobile) is str for mobile in mobiles)
            and type(variables) is dict
            and all(type(name) is str for name in variables)
            and (callback_url is None or (type(callback_url) is str and 1 <= len(callback_url) <= 1000))
        ):
            return {
                "template_id": template_id,
                "mobiles": list(mobiles),
                "variables": dict(variables),
                "callback_url": callback_url,
            }
        return None


class SendResultSchema(ma.Schema):
    message_id = ma.fields.String(metadata={"description": "The first message's id"})
    message_ids = ma.fields.List(
        ma.fields.String(), metadata={"description": "One per mobile, in request order"}
    )
    status = ma.fields.String()


class BatchItemSchema(ma.Schema):
    mobile = ma.fields.String(required=True)
    variables = VARIABLES


class BatchItems(ma.fields.List):
    """A list of :class:`BatchItemSchema` objects, checked without loading a nested schema per item.

    marshmallow's nested load cost a 1,000-item batch more CPU than storing its messages. This gives the
    same data and the same errors (a test compares them) and the docs still show the item schema.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(ma.fields.Nested(BatchItemSchema), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not ma.utils.is_collection(value):
            raise self.make_error("invalid")
        fields = self.inner.schema.fields
        mobile_field, variables_field = fields["mobile"], fields["variables"]
        items, errors = [], {}
        for index, item in enumerate(value):
            if item is None:
                errors[index] = [self.inner.error_messages["null"]]
                continue
            if not isinstance(item, dict):
                errors[index] = {"_schema": [self.inner.schema.error_messages["type"]]}
                items.append({})
                continue
            loaded, problems = {}, {}
            mobile = item.get("mobile", ma.missing)
            if mobile is ma.missing:
                problems["mobile"] = [mobile_field.error_messages["required"]]
            elif mobile is None:
                problems["mobile"] = [mobile_field.error_messages["null"]]
            elif not isinstance(mobile, str):
                problems["mobile"] = [mobile_field.error_messages["invalid"]]
            else:
                loaded["mobile"] = mobile
            variables = item.get("variables", ma.missing)
            if variables is ma.missing:
                loaded["variables"] = {}
            elif variables is None:
                problems["variables"] = [variables_field.error_messages["null"]]
            elif not isinstance(variables, dict):
                problems["variables"] = [variables_field.error_messages["invalid"]]
            else:
                loaded["variables"] = variables
            for name in item:
                if name not in fields:
                    problems[name] = [self.inner.schema.error_messages["unknown"]]
            if problems:
                errors[index] = problems
            items.append(loaded)
        if errors:
            raise ma.ValidationError(errors, valid_data=items)
        return items


class BatchSendArgsSchema(ma.Schema):
    template_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=40))
    items = BatchItems(required=True)
    callback_url = CALLBACK_URL


class BatchAcceptedSchema(ma.Schema):
    batch_id = ma.fields.String()
    total = ma.fields.Integer()
    status = ma.fields.String()


@blp.route("/send")
class Send(MethodView):
    @require_scope("sms:send")
    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.arguments(SendArgsSchema)
    @blp.response(200, envelope(SendResultSchema))
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown template")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS", description="Daily quota or per-mobile frequency")
    def post(self, headers, args):
        """Send one template to 1–100 mobiles: one message per mobile"""
        accepted = sending.send(
            db.session,
            current_principal().tenant_id,
            args["template_id"],
            args["mobiles"],
            args["variables"],
            args["callback_url"],
            headers["idempotency_key"],
        )
        # The answer is built in its documented shape (SendResultSchema): answered as it is, without the
        # schema's dump (a test compares the two).
        return jsonify(ok(accepted))


@blp.route("/batch-send")
class BatchSend(MethodView):
    @require_scope("sms:send")
    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.arguments(BatchSendArgsSchema)
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
