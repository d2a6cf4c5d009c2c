"""``/api/v1/sms/opt-outs``: mobiles that stopped a tenant's marketing messages (scope ``sms:admin``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint, link, operation
from shared.auth import current_principal, require_scope
from shared.envelope import BadRequestError, envelope, ok, page_schema
from shared.paging import PageArgsSchema
from sms_service.accepting import opt_outs
from sms_service.api.common import Mobile, UtcTime
from sms_service.extensions import db
from sms_service.mobiles import MOBILE_PATTERN, mask_mobile, normalise_mobile

blp = Blueprint("sms_opt_outs", __name__, url_prefix="/api/v1/sms/opt-outs", description="营销短信退订")


def _path_mobile(raw: str) -> str:
    """The mobile of a path, normalised (a path has no schema to check it)."""
    number = normalise_mobile(raw)
    if number is None:
        raise BadRequestError("手机号格式不正确", data={"errors": {"mobile": ["手机号格式不正确"]}})
    return number


class OptOutArgsSchema(ma.Schema):
    mobile = Mobile(required=True)
    reason = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class OptOutSchema(ma.Schema):
    mobile = ma.fields.Function(lambda row: mask_mobile(row.mobile), metadata={"type": "string"})
    source = ma.fields.String(
        metadata={"description": "api, or the upstream that carried the mobile's reply"}
    )
    reason = ma.fields.String(allow_none=True)
    created_at = UtcTime()


class OptInSchema(ma.Schema):
    mobile = ma.fields.String()
    deleted = ma.fields.Boolean()


@blp.route("")
class OptOuts(MethodView):
    @require_scope("sms:admin")
    @blp.doc(**operation("create_opt_out", OptBackIn=link("delete_opt_out", mobile="$request.body#/mobile")))
    @blp.arguments(OptOutArgsSchema())
    @blp.response(200, envelope(OptOutSchema))
    def post(self, args):
        """Opt a mobile out of the tenant's marketing messages (again: the first record stands)"""
        tenant_id = current_principal().tenant_id
        return ok(opt_outs.opt_out(db.session, tenant_id, args["mobile"], reason=args["reason"]))

    @require_scope("sms:admin")
    @blp.doc(**operation("list_opt_outs"))
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(OptOutSchema)))
    def get(self, args):
        """The tenant's opt-outs, newest first (mobiles masked)"""
        rows, total = opt_outs.list_opt_outs(
            db.session, current_principal().tenant_id, args["page"], args["size"]
        )
        return ok({"list": rows, "total": total, "page": args["page"], "size": args["size"]})


MOBILE_IN_PATH = {
    "in": "path",
    "name": "mobile",
    "required": True,
    "schema": {"type": "string", "pattern": MOBILE_PATTERN},
}


@blp.route("/<mobile>", parameters=[MOBILE_IN_PATH])
class OptOutByMobile(MethodView):
    @require_scope("sms:admin")
    @blp.doc(**operation("delete_opt_out"))
    @blp.response(200, envelope(OptInSchema))
    @blp.alt_response(404, response="NOT_FOUND", description="The mobile had not opted out")
    def delete(self, mobile):
        """Opt a mobile back in"""
        number = _path_mobile(mobile)
        opt_outs.opt_in(db.session, current_principal().tenant_id, number)
        return ok({"mobile": mask_mobile(number), "deleted": True})
