"""SMS service: tenants send templated SMS through Aliyun / Tencent with failover."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from shared.app import Service, build_app
from shared.settings import ConfigurationError
from sms_service import queues
from sms_service.extensions import celery, db, keys
from sms_service.metrics import BacklogCollector
from sms_service.settings import load_config

MIGRATIONS = Path(__file__).parent / "migrations"


SERVICE = Service(
    import_name=__name__,
    title="SMS service",
    api_prefix="/api/v1/sms",
    db=db,
    celery=celery,
    keys=keys,
    queues=queues.ALL,
    migrations=MIGRATIONS,
    live_metrics=(BacklogCollector,),
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    settings = load_config(config)
    from sms_service.delivery.dispatch import make_providers

    try:
        make_providers(settings)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None

    app, api = build_app(SERVICE, settings, celery_settings(settings))

    from sms_service.api import batches, opt_outs, receipts, records, send, stats, templates, uplinks

    for module in (templates, send, batches, records, stats, opt_outs, receipts, uplinks):
        api.register_blueprint(module.blp)

    from sms_service import cli

    cli.register(app)
    return app


def celery_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Beat runs the safety nets; a publish to a dead broker gives up fast (the sweep publishes again)."""
    interval = settings["SWEEP_INTERVAL_SECONDS"]
    stats_interval = settings["STATS_INTERVAL_SECONDS"]
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
            "sms-rebuild-stats": {
                "task": "sms.rebuild_stats",
                "schedule": stats_interval,
                "options": {"queue": queues.PERIODIC, "expires": stats_interval},
            },
        },
    }
