"""``/api/v1/sms/templates``: a tenant's message templates (scope ``sms:admin``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint, link, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema
from sms_service.accepting import templates
from sms_service.api.common import UtcTime
from sms_service.extensions import db
from sms_service.models import CATEGORIES, MARKETING, NOTIFICATION, TEMPLATE_DISABLED, TEMPLATE_ENABLED

blp = Blueprint("sms_templates", __name__, url_prefix="/api/v1/sms/templates", description="短信模板管理")

STATUS = validate.OneOf((TEMPLATE_ENABLED, TEMPLATE_DISABLED), error="status 必须是 enabled 或 disabled")
CATEGORY = validate.OneOf(CATEGORIES, error="category 必须是 {choices} 之一")
# templates.check_category, as JSON Schema: a marketing template's content ends with an opt-out instruction.
MARKETING_RULE = {
    "if": {"properties": {"category": {"const": MARKETING}}, "required": ["category"]},
    "then": {
        "properties": {"content": {"pattern": "(" + "|".join(templates.OPT_OUT_INSTRUCTIONS) + r")\s*$"}}
    },
}
CATEGORY_DESCRIPTION = (
    "verification, notification or marketing; a marketing template's content ends with an opt-out "
    "instruction: " + ", ".join(templates.OPT_OUT_INSTRUCTIONS)
)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("不能为空")


NOT_BLANK = {"pattern": r"\S"}
# templates.check_content: each "${" opens a placeholder ${name} (a letter or _, then up to 31 of A-Za-z0-9_).
CONTENT = {
    "description": "Text with ${name} placeholders; the variables come from it",
    "pattern": r"^([^$]|\$+[^{$]|\$+\{[A-Za-z_][A-Za-z0-9_]{0,31}\})*\$*$",
}


class ProviderCodesSchema(ma.Schema):
    """The upstream template code per provider, e.g. {"aliyun": "SMS_1", "tencent": "12"}."""

    aliyun = ma.fields.String(validate=validate.Length(min=1, max=64))
    tencent = ma.fields.String(validate=validate.Length(min=1, max=64))
    sandbox = ma.fields.String(validate=validate.Length(min=1, max=64))


class TemplateFieldsSchema(ma.Schema):
    name = ma.fields.String(validate=[validate.Length(min=1, max=100), _not_blank], metadata=NOT_BLANK)
    content = ma.fields.String(validate=[validate.Length(min=1, max=500), _not_blank], metadata=CONTENT)
    sign_name = ma.fields.String(validate=[validate.Length(min=1, max=40), _not_blank], metadata=NOT_BLANK)
    provider_codes = ma.fields.Nested(ProviderCodesSchema)
    status = ma.fields.String(validate=STATUS)
    category = ma.fields.String(validate=CATEGORY, metadata={"description": CATEGORY_DESCRIPTION})


class TemplateCreateSchema(TemplateFieldsSchema):
    class Meta:
        openapi = MARKETING_RULE

    name = ma.fields.String(
        required=True, validate=[validate.Length(min=1, max=100), _not_blank], metadata=NOT_BLANK
    )
    content = ma.fields.String(
        required=True, validate=[validate.Length(min=1, max=500), _not_blank], metadata=CONTENT
    )
    sign_name = ma.fields.String(
        required=True, validate=[validate.Length(min=1, max=40), _not_blank], metadata=NOT_BLANK
    )
    provider_codes = ma.fields.Nested(ProviderCodesSchema, load_default=dict)
    status = ma.fields.String(load_default=TEMPLATE_ENABLED, validate=STATUS)
    category = ma.fields.String(
        load_default=NOTIFICATION, validate=CATEGORY, metadata={"description": CATEGORY_DESCRIPTION}
    )


class TemplateUpdateSchema(TemplateFieldsSchema):
    class Meta:
        openapi = {"minProperties": 1}

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
    provider_codes = ma.fields.Nested(ProviderCodesSchema)
    category = ma.fields.String(validate=CATEGORY)
    status = ma.fields.String(validate=STATUS)
    created_at = UtcTime()
    updated_at = UtcTime()


class TemplateDeletedSchema(ma.Schema):
    template_id = ma.fields.String()
    deleted = ma.fields.Boolean()


@blp.route("")
class Templates(MethodView):
    @require_scope("sms:admin")
    @blp.doc(
        **operation(
            "create_template",
            GetTemplate=link("get_template", template_id="template_id"),
            UpdateTemplate=link("update_template", template_id="template_id"),
            DeleteTemplate=link("delete_template", template_id="template_id"),
        )
    )
    @blp.arguments(TemplateCreateSchema())
    @blp.response(200, envelope(TemplateSchema))
    def post(self, fields):
        """Create a template"""
        return ok(templates.create_template(db.session, current_principal().tenant_id, fields))

    @require_scope("sms:admin")
    @blp.doc(**operation("list_templates"))
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
    @blp.doc(**operation("get_template"))
    def get(self, template_id):
        """Get a template"""
        return ok(templates.get_template(db.session, current_principal().tenant_id, template_id))

    @require_scope("sms:admin")
    @blp.arguments(TemplateUpdateSchema())
    @blp.response(200, envelope(TemplateSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("update_template"))
    def put(self, fields, template_id):
        """Update a template (any of its fields)"""
        return ok(templates.update_template(db.session, current_principal().tenant_id, template_id, fields))

    @require_scope("sms:admin")
    @blp.response(200, envelope(TemplateDeletedSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("delete_template"))
    def delete(self, template_id):
        """Delete a template (messages already sent keep referring to it)"""
        templates.delete_template(db.session, current_principal().tenant_id, template_id)
        return ok({"template_id": template_id, "deleted": True})
