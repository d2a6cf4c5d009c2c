"""``GET /api/v1/<service>/me``: lets a tenant check which tenant and scopes a key carries."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from shared.api import Blueprint, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok


class MeSchema(ma.Schema):
    tenant_id = ma.fields.String()
    tenant_name = ma.fields.String()
    key_id = ma.fields.String()
    scopes = ma.fields.List(ma.fields.String())


def me_blueprint(url_prefix: str) -> Blueprint:
    blueprint = Blueprint("me", __name__, url_prefix=url_prefix, description="Check an API key")

    @blueprint.route("/me")
    class Me(MethodView):
        @require_scope()
        @blueprint.doc(**operation("get_me"))
        @blueprint.response(200, envelope(MeSchema))
        def get(self):
            principal = current_principal()
            return ok(
                {
                    "tenant_id": principal.tenant_id,
                    "tenant_name": principal.tenant_name,
                    "key_id": principal.key_id,
                    "scopes": sorted(principal.scopes),
                }
            )

    return blueprint
