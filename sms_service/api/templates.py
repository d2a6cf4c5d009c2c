"""``/api/v1/sms/templates``: a tenant's message templates (scope ``sms:admin``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema
from sms_service.accepting import templates
from sms_service.api.common import UtcTime
from sms_service.extensions import db
from sms_service.models import TEMPLATE_DISABLED, TEMPLATE_ENABLED

blp = Blueprint("sms_templates", __name__, url_prefix="/api/v1/sms/templates", description="短信模板管理")

STATUS = validate.OneOf((TEMPLATE_ENABLED, TEMPLATE_DISABLED), error="status 必须是 enabled 或 disabled")


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("不能为空")


class TemplateFieldsSchema(ma.Schema):
    name = ma.fields.String(validate=[validate.Length(min=1, max=100), _not_blank])
    content = ma.fields.String(
        validate=[validate.Length(min=1, max=500), _not_blank],
        metadata={"description": "Text with ${name} placeholders; the variables come from it"},
    )
    sign_name = ma.fields.String(validate=[validate.Length(min=1, max=40), _not_blank])
    provider_codes = ma.fields.Dict(
        keys=ma.fields.String(validate=validate.OneOf(templates.KNOWN_PROVIDERS)),
        values=ma.fields.String(validate=validate.Length(min=1, max=64)),
        metadata={
            "description": 'Upstream template code per provider, e.g. {"aliyun": "SMS_1", "tencent": "12"}'
        },
    )
    status = ma.fields.String(validate=STATUS)


class TemplateCreateSchema(TemplateFieldsSchema):
    name = ma.fields.String(required=True, validate=[validate.Length(min=1, max=100), _not_blank])
    content = ma.fields.String(required=True, validate=[validate.Length(min=1, max=500), _not_blank])
    sign_name = ma.fields.String(required=True, validate=[validate.Length(min=1, max=40), _not_blank])
    provider_codes = ma.fields.Dict(
        keys=ma.fields.String(validate=validate.OneOf(templates.KNOWN_PROVIDERS)),
        values=ma.fields.String(validate=validate.Length(min=1, max=64)),
        load_default=dict,
    )
    status = ma.fields.String(load_default=TEMPLATE_ENABLED, validate=STATUS)


class TemplateUpdateSchema(TemplateFieldsSchema):
    @ma.validates_schema
    def _something_to_change(self, data, **_kwargs) -> None:
        if not data:
            raise ma.ValidationError("请至少提供一个要修改的字段")


class TemplateListArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=STATUS)


class TemplateSchema(ma.Schema):
    template_id = ma.fields.String(attribute="id")
    name = ma.fields.String()
    content = ma.fields.String()
    variables = ma.fields.List(ma.fields.String())
    sign_name = ma.fields.String()
    provider_codes = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    status = ma.fields.String()
    created_at = UtcTime()
    updated_at = UtcTime()


class TemplateDeletedSchema(ma.Schema):
    template_id = ma.fields.String()
    deleted = ma.fields.Boolean()


@blp.route("")
class Templates(MethodView):
    @require_scope("sms:admin")
    @blp.arguments(TemplateCreateSchema())
    @blp.response(200, envelope(TemplateSchema))
    def post(self, fields):
        """Create a template"""
        return ok(templates.create_template(db.session, current_principal().tenant_id, fields))

    @require_scope("sms:admin")
    @blp.arguments(TemplateListArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(TemplateSchema)))
    def get(self, args):
        """List templates, newest first"""
        rows, total = templates.list_templates(
            db.session, current_principal().tenant_id, args["page"], args["size"], args.get("status")
        )
        return ok({"list": rows, "total": total, "page": args["page"], "size": args["size"]})


@blp.route("/<template_id>")
class TemplateById(MethodView):
    @require_scope("sms:admin")
    @blp.response(200, envelope(TemplateSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, template_id):
        """Get a template"""
        return ok(templates.get_template(db.session, current_principal().tenant_id, template_id))

    @require_scope("sms:admin")
    @blp.arguments(TemplateUpdateSchema())
    @blp.response(200, envelope(TemplateSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, fields, template_id):
        """Update a template (any of its fields)"""
        return ok(templates.update_template(db.session, current_principal().tenant_id, template_id, fields))

    @require_scope("sms:admin")
    @blp.response(200, envelope(TemplateDeletedSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, template_id):
        """Delete a template (messages already sent keep referring to it)"""
        templates.delete_template(db.session, current_principal().tenant_id, template_id)
        return ok({"template_id": template_id, "deleted": True})
