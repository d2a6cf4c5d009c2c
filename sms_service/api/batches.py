"""``GET /api/v1/sms/batches/{batch_id}``: a batch's counts by status and its messages (``sms:send``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from shared.api import Blueprint, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok
from shared.paging import PageArgsSchema
from sms_service import records
from sms_service.api.common import UtcTime
from sms_service.extensions import db
from sms_service.mobiles import mask_mobile
from sms_service.models import STATUSES

blp = Blueprint("sms_batches", __name__, url_prefix="/api/v1/sms/batches", description="批量发送进度")


class BatchMessageSchema(ma.Schema):
    message_id = ma.fields.String(attribute="id")
    mobile = ma.fields.Function(lambda message: mask_mobile(message.mobile), metadata={"type": "string"})
    status = ma.fields.String()


class BatchSchema(ma.Schema):
    batch_id = ma.fields.String()
    template_id = ma.fields.String()
    total = ma.fields.Integer()
    created_at = UtcTime()
    test = ma.fields.Boolean(metadata={"description": "Sent with a test key: its messages are simulated"})
    counts = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "Messages per status: " + ", ".join(STATUSES)},
    )
    list = ma.fields.List(ma.fields.Nested(BatchMessageSchema))
    page = ma.fields.Integer()
    size = ma.fields.Integer()


@blp.route("/<batch_id>")
class BatchById(MethodView):
    @require_scope("sms:send")
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, envelope(BatchSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("get_batch"))
    def get(self, args, batch_id):
        """A batch's progress, its messages in request order"""
        principal = current_principal()
        progress = records.batch_progress(
            db.session, principal.tenant_id, batch_id, args["page"], args["size"], test=principal.test
        )
        return ok(progress)
