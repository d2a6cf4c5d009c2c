"""Payment service: a configuration center for WeChat Pay / Alipay and payment orders routed by site."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate

from payment_service import queues
from payment_service.beat import beat_settings
from payment_service.config import load_config
from payment_service.extensions import celery, db, keys
from payment_service.secret_box import install_secret_box
from shared.api import EnvelopeApi
from shared.auth import ApiKeyAuthenticator
from shared.health import health_blueprint
from shared.me import me_blueprint
from shared.tasks import bind_celery

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    settings = load_config(config)
    app = Flask(__name__)
    app.config.update(settings)
    app.config.update(
        API_TITLE="Payment service",
        API_VERSION="1.0.0",
        MAX_CONTENT_LENGTH=settings["MAX_BODY_BYTES"],
        TESTING=settings["ENV"] == "testing",
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    db.init_app(app, settings["DATABASE_URL"], pool_size=settings["DB_POOL_SIZE"])
    Migrate(app, db, directory=str(MIGRATIONS))
    bind_celery(celery, app, queues.ALL, beat_settings(settings))
    ApiKeyAuthenticator(keys.lookup).init_app(app)
    install_secret_box(app)

    from payment_service.api import bindings, configs, notify, orders

    api = EnvelopeApi(app)
    api.register_blueprint(me_blueprint("/api/v1/payment"))
    configs.register_params_schemas(api)
    api.register_blueprint(configs.blp)
    api.register_blueprint(bindings.blp)
    api.register_blueprint(orders.blp)
    api.register_blueprint(notify.blp)
    app.register_blueprint(health_blueprint(db, celery))

    from payment_service import cli

    cli.register(app)
    return app
