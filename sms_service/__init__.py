"""SMS service: tenants send templated SMS through Aliyun / Tencent with failover."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate

from shared.api import EnvelopeApi
from shared.auth import ApiKeyAuthenticator
from shared.health import health_blueprint
from shared.me import me_blueprint
from shared.settings import ConfigurationError
from shared.tasks import bind_celery
from sms_service import queues
from sms_service.config import load_config
from sms_service.extensions import celery, db, keys

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    settings = load_config(config)
    app = Flask(__name__)
    app.config.update(settings)
    app.config.update(
        API_TITLE="SMS service",
        API_VERSION="1.0.0",
        MAX_CONTENT_LENGTH=settings["MAX_BODY_BYTES"],
        TESTING=settings["ENV"] == "testing",
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    from sms_service.dispatch import make_providers

    try:
        make_providers(settings)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None

    db.init_app(app, settings["DATABASE_URL"], pool_size=settings["DB_POOL_SIZE"])
    Migrate(app, db, directory=str(MIGRATIONS))
    bind_celery(celery, app, queues.ALL, celery_settings(settings))
    ApiKeyAuthenticator(keys.lookup).init_app(app)

    from sms_service.api import batches, receipts, records, send, templates

    api = EnvelopeApi(app)
    api.register_blueprint(me_blueprint("/api/v1/sms"))
    for module in (templates, send, batches, records, receipts):
        api.register_blueprint(module.blp)
    app.register_blueprint(health_blueprint(db, celery))

    from sms_service import cli

    cli.register(app)
    return app


def celery_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Beat runs the safety nets; a publish to a dead broker gives up fast (the sweep publishes again)."""
    interval = settings["SWEEP_INTERVAL_SECONDS"]
    return {
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "beat_schedule": {
            # A run nobody picked up before the next one is due is dropped, so runs never pile up.
            "sms-sweep": {
                "task": "sms.sweep",
                "schedule": interval,
                "options": {"queue": queues.PERIODIC, "expires": interval},
            },
            "sms-poll-receipts": {
                "task": "sms.poll_receipts",
                "schedule": interval,
                "options": {"queue": queues.RECEIPTS, "expires": interval},
            },
        },
    }
