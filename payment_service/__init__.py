"""Payment service: a configuration center for WeChat Pay / Alipay and payment orders routed by site."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from payment_service import queues
from payment_service.beat import beat_settings
from payment_service.configs.secret_box import install_secret_box
from payment_service.extensions import celery, db, keys
from payment_service.metrics import BacklogCollector
from payment_service.settings import load_config
from shared.app import Service, build_app

MIGRATIONS = Path(__file__).parent / "migrations"


SERVICE = Service(
    import_name=__name__,
    title="Payment service",
    api_prefix="/api/v1/payment",
    db=db,
    celery=celery,
    keys=keys,
    queues=queues.ALL,
    migrations=MIGRATIONS,
    live_metrics=(BacklogCollector,),
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    settings = load_config(config)
    app, api = build_app(SERVICE, settings, beat_settings(settings))
    install_secret_box(app)

    from payment_service.api import bindings, configs, notify, orders, refunds

    configs.register_params_schemas(api)
    for module in (configs, bindings, orders, refunds, notify):
        api.register_blueprint(module.blp)

    from payment_service import cli

    cli.register(app)
    return app
