"""``/api/v1/sites/{site_id}/payment-binding``: which config each site pays through (``payment:admin``)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from payment_service.configs import bindings
from payment_service.extensions import db
from shared.api import Blueprint, link, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok

blp = Blueprint(
    "site_bindings",
    __name__,
    url_prefix="/api/v1/sites",
    description="Site payment bindings: at most one WeChat and one Alipay config per site",
)


class BindArgsSchema(ma.Schema):
    config_id = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=40, error="长度必须在 1 到 40 之间")
    )


class BindingSchema(ma.Schema):
    binding_id = ma.fields.String()
    channel = ma.fields.String(metadata={"enum": list(bindings.CHANNELS)})
    config_id = ma.fields.String()
    config_name = ma.fields.String()
    mode = ma.fields.String()
    bound_at = ma.fields.String(metadata={"format": "date-time"})


class BindResultSchema(BindingSchema):
    replaced_binding_id = ma.fields.String(
        allow_none=True, metadata={"description": "The binding this one replaced on the channel, or null"}
    )


class SiteBindingsSchema(ma.Schema):
    bindings = ma.fields.List(ma.fields.Nested(BindingSchema))


class UnbindResultSchema(ma.Schema):
    binding_id = ma.fields.String()
    site_id = ma.fields.String()
    channel = ma.fields.String()
    config_id = ma.fields.String()
    deleted = ma.fields.Boolean()


SITE_IN_PATH = {
    "in": "path",
    "name": "site_id",
    "schema": {"type": "string", "pattern": bindings.SITE_ID.pattern},
}


@blp.route("/<site_id>/payment-binding", parameters=[SITE_IN_PATH])
class SiteBinding(MethodView):
    @require_scope("payment:admin")
    @blp.arguments(BindArgsSchema())
    @blp.response(200, envelope(BindResultSchema))
    @blp.alt_response(404, response="NOT_FOUND", description="Unknown config")
    @blp.alt_response(409, response="CONFLICT", description="A concurrent change of the same binding")
    @blp.doc(
        **operation(
            "bind_site", Unbind=link("unbind_site", site_id="$request.path.site_id", binding_id="binding_id")
        )
    )
    def post(self, args, site_id):
        """Bind a config to the site; an already bound channel is replaced"""
        result = bindings.bind_site(db.session, current_principal(), site_id, args["config_id"])
        return ok(bindings.bind_result_view(result))

    @require_scope("payment:admin")
    @blp.response(200, envelope(SiteBindingsSchema))
    @blp.doc(**operation("get_site_bindings"))
    def get(self, site_id):
        """The site's current bindings (WeChat and Alipay)"""
        bound = bindings.list_site_bindings(db.session, current_principal().tenant_id, site_id)
        return ok({"bindings": [bindings.binding_view(item.binding, item.config) for item in bound]})


@blp.route("/<site_id>/payment-binding/<binding_id>", parameters=[SITE_IN_PATH])
class SiteBindingItem(MethodView):
    @require_scope("payment:admin")
    @blp.response(200, envelope(UnbindResultSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("unbind_site"))
    def delete(self, site_id, binding_id):
        """Remove one binding; the site's other channel stays bound"""
        binding = bindings.unbind_site(db.session, current_principal(), site_id, binding_id)
        return ok(
            {
                "binding_id": binding.id,
                "site_id": binding.site_id,
                "channel": binding.channel,
                "config_id": binding.config_id,
                "deleted": True,
            }
        )
