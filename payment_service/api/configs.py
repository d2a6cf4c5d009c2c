"""``/api/v1/payment/configs``: the payment configuration center (scope ``payment:admin``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Api
from marshmallow import validate

from payment_service.configs import center, history
from payment_service.configs.params import MASK, MODES, PARAMS_SCHEMAS, SECRET_FIELDS
from payment_service.extensions import db
from shared.api import Blueprint, link, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema

blp = Blueprint(
    "payment_configs",
    __name__,
    url_prefix="/api/v1/payment/configs",
    description="Payment configuration center: WeChat Pay / Alipay merchant configs",
)

PARAMS_COMPONENTS = {
    "wechat_split": "WechatSplitParams",
    "wechat_direct": "WechatDirectParams",
    "alipay_direct": "AlipayDirectParams",
}
PARAMS_DESCRIPTION = (
    "Fields depend on mode (one of the params schemas). Secrets (api_key, merchant_private_key, "
    'app_private_key) are encrypted at rest and shown as "***"; on update a secret left out or sent '
    'as "***" keeps its stored value.'
)


def _ref(component: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{component}"}


def _create_component(mode: str) -> str:
    return PARAMS_COMPONENTS[mode].removesuffix("Params") + "ConfigCreate"


def _update_component(mode: str) -> str:
    return PARAMS_COMPONENTS[mode] + "Update"


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("不能为空")


NAME = {"validate": [validate.Length(min=1, max=100, error="长度必须在 1 到 100 之间"), _not_blank]}
MODE = {"validate": validate.OneOf(MODES, error="mode 必须是 {choices} 之一")}


class ConfigCreateArgsSchema(ma.Schema):
    """A config: name, mode and the params of that mode. ``params`` is checked against its mode's schema by
    the configuration center (``validate_params``); the document states the pairing as a oneOf by mode."""

    class Meta:
        openapi = {
            "oneOf": [_ref(_create_component(mode)) for mode in MODES],
            "discriminator": {
                "propertyName": "mode",
                "mapping": {mode: _ref(_create_component(mode))["$ref"] for mode in MODES},
            },
        }

    name = ma.fields.String(required=True, **NAME)
    mode = ma.fields.String(required=True, **MODE)
    params = ma.fields.Dict(required=True, metadata={"description": PARAMS_DESCRIPTION})

    @ma.post_load
    def _strip_name(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data["name"] = data["name"].strip()
        return data


def _mode_update_rule(mode: str) -> dict[str, Any]:
    return {
        "if": {"properties": {"mode": {"const": mode}}, "required": ["mode"]},
        "then": {"properties": {"params": _ref(_update_component(mode))}},
    }


class ConfigUpdateArgsSchema(ma.Schema):
    """``params`` is checked against the config's own mode; ``mode``, when sent, must be that mode."""

    class Meta:
        openapi = {
            "allOf": [
                {"anyOf": [{"required": ["name"]}, {"required": ["params"]}]},
                *(_mode_update_rule(mode) for mode in MODES),
            ]
        }

    name = ma.fields.String(**NAME)
    mode = ma.fields.String(
        metadata={
            "description": "Optional; must equal the current mode (it cannot change)",
            "enum": list(MODES),
        }
    )
    params = ma.fields.Dict(
        metadata={
            "description": PARAMS_DESCRIPTION + " Checked against the config's mode.",
            "oneOf": [_ref(_update_component(mode)) for mode in MODES],
        }
    )

    @ma.validates_schema
    def _something_to_change(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "name" not in data and "params" not in data:
            raise ma.ValidationError("请提供 name 或 params")

    @ma.post_load
    def _strip_name(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if "name" in data:
            data["name"] = data["name"].strip()
        return data


def _create_variant(mode: str) -> type[ma.Schema]:
    """The body of a create in ``mode``, for the document: ``mode`` that one value, ``params`` its schema."""
    return type(
        _create_component(mode) + "Schema",
        (ConfigCreateArgsSchema,),
        {
            "Meta": type("Meta", (), {"openapi": {}}),
            "mode": ma.fields.String(required=True, validate=validate.OneOf([mode])),
            "params": ma.fields.Nested(PARAMS_SCHEMAS[mode], required=True),
        },
    )


def _update_params(component: dict[str, Any], secrets: tuple[str, ...]) -> dict[str, Any]:
    """A mode's params on update: each secret may be left out, null or "***" (keep the stored value)."""
    properties = dict(component["properties"])
    for name in secrets:
        properties[name] = {
            "anyOf": [properties[name], {"type": "string", "const": MASK}, {"type": "null"}],
            "description": 'Left out, null or "***": the stored value is kept',
        }
    required = [name for name in component.get("required", []) if name not in secrets]
    return {**component, "properties": properties, "required": required}


def register_params_schemas(api: Api) -> None:
    """Name each mode's params schema, its update form and its create body in the OpenAPI document, for
    the oneOfs of the config bodies to point at."""
    components = api.spec.components
    for mode, component in PARAMS_COMPONENTS.items():
        components.schema(component, schema=PARAMS_SCHEMAS[mode])
        components.schema(
            _update_component(mode), _update_params(components.schemas[component], SECRET_FIELDS[mode])
        )
        components.schema(_create_component(mode), schema=_create_variant(mode))


class ConfigStatusArgsSchema(ma.Schema):
    status = ma.fields.String(
        required=True, validate=validate.OneOf(center.STATUSES, error="status 必须是 enabled 或 disabled")
    )


class ConfigListArgsSchema(PageArgsSchema):
    mode = ma.fields.String(validate=validate.OneOf(MODES, error="mode 必须是 {choices} 之一"))
    status = ma.fields.String(
        validate=validate.OneOf(center.STATUSES, error="status 必须是 enabled 或 disabled")
    )


class ConfigCreatedSchema(ma.Schema):
    config_id = ma.fields.String()
    name = ma.fields.String()
    mode = ma.fields.String()
    status = ma.fields.String()
    created_at = ma.fields.String(metadata={"format": "date-time"})


class ConfigSummarySchema(ConfigCreatedSchema):
    bound_sites = ma.fields.Integer(metadata={"description": "How many sites are bound to this config"})


class ConfigDetailSchema(ConfigSummarySchema):
    params = ma.fields.Dict(metadata={"description": PARAMS_DESCRIPTION})
    updated_at = ma.fields.String(metadata={"format": "date-time"})


class ConfigDeletedSchema(ma.Schema):
    config_id = ma.fields.String()
    deleted = ma.fields.Boolean()


class HistoryEntrySchema(ma.Schema):
    action = ma.fields.String(metadata={"enum": list(history.ACTIONS)})
    at = ma.fields.String(metadata={"format": "date-time"})
    key_id = ma.fields.String(metadata={"description": "The API key that made the change"})
    changes = ma.fields.Dict(
        metadata={"description": '{field: {old, new}}; params fields dotted (params.app_id), secrets "***"'}
    )


@blp.route("")
class Configs(MethodView):
    @require_scope("payment:admin")
    @blp.arguments(ConfigCreateArgsSchema())
    @blp.response(200, envelope(ConfigCreatedSchema))
    @blp.doc(
        **operation(
            "create_config",
            GetConfig=link("get_config", config_id="config_id"),
            UpdateConfig=link("update_config", config_id="config_id"),
            DeleteConfig=link("delete_config", config_id="config_id"),
            SetConfigStatus=link("set_config_status", config_id="config_id"),
            GetConfigHistory=link("get_config_history", config_id="config_id"),
        )
    )
    def post(self, args):
        """Create a payment config"""
        config = center.create_config(
            db.session, current_principal(), args["name"], args["mode"], args["params"]
        )
        return ok(center.creation_view(config))

    @require_scope("payment:admin")
    @blp.arguments(ConfigListArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(ConfigSummarySchema)))
    @blp.doc(**operation("list_configs"))
    def get(self, args):
        """List payment configs, newest first"""
        rows, total = center.list_configs(
            db.session,
            current_principal().tenant_id,
            mode=args.get("mode"),
            status=args.get("status"),
            page=args["page"],
            size=args["size"],
        )
        items = [center.summary_view(config, bound) for config, bound in rows]
        return ok({"list": items, "total": total, "page": args["page"], "size": args["size"]})


@blp.route("/<config_id>")
class Config(MethodView):
    @require_scope("payment:admin")
    @blp.response(200, envelope(ConfigDetailSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("get_config"))
    def get(self, config_id):
        """Show a payment config (secrets as ***)"""
        config = center.get_config(db.session, current_principal().tenant_id, config_id)
        return ok(center.detail_view(config, center.count_bound_sites(db.session, config.id)))

    @require_scope("payment:admin")
    @blp.arguments(ConfigUpdateArgsSchema())
    @blp.response(200, envelope(ConfigDetailSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("update_config"))
    def put(self, args, config_id):
        """Update name and/or params (the mode cannot change)"""
        config = center.update_config(
            db.session,
            current_principal(),
            config_id,
            name=args.get("name"),
            params=args.get("params"),
            mode=args.get("mode"),
        )
        return ok(center.detail_view(config, center.count_bound_sites(db.session, config.id)))

    @require_scope("payment:admin")
    @blp.response(200, envelope(ConfigDeletedSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="Sites are still bound to the config")
    @blp.doc(**operation("delete_config"))
    def delete(self, config_id):
        """Delete a payment config no site is bound to"""
        center.delete_config(db.session, current_principal(), config_id)
        return ok({"config_id": config_id, "deleted": True})


@blp.route("/<config_id>/status")
class ConfigStatus(MethodView):
    @require_scope("payment:admin")
    @blp.arguments(ConfigStatusArgsSchema())
    @blp.response(200, envelope(ConfigDetailSchema))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("set_config_status"))
    def put(self, args, config_id):
        """Enable or disable a payment config"""
        config = center.set_status(db.session, current_principal(), config_id, args["status"])
        return ok(center.detail_view(config, center.count_bound_sites(db.session, config.id)))


@blp.route("/<config_id>/history")
class ConfigHistory(MethodView):
    @require_scope("payment:admin")
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(HistoryEntrySchema)))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(**operation("get_config_history"))
    def get(self, args, config_id):
        """Audit trail of a config, newest first (kept after the config is deleted)"""
        tenant_id = current_principal().tenant_id
        center.config_history_visible(db.session, tenant_id, config_id)
        entries, total = history.list_history(db.session, tenant_id, config_id, args["page"], args["size"])
        items = [history.describe_entry(entry) for entry in entries]
        return ok({"list": items, "total": total, "page": args["page"], "size": args["size"]})
