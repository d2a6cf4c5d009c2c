"""The skeleton both services' ``create_app`` share: config, JSON, logging, database, migrations,
Celery, API keys, the envelope API with ``/me``, the health probes and ``/metrics``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask_migrate import Migrate

from shared import metrics
from shared.api import EnvelopeApi
from shared.auth import ApiKeyAuthenticator
from shared.db import Database
from shared.health import health_blueprint
from shared.logging import configure_logging
from shared.me import me_blueprint
from shared.tasks import bind_celery
from shared.tenancy import KeyStore


@dataclass(frozen=True)
class Service:
    """What tells one service from the other."""

    import_name: str
    title: str
    api_prefix: str
    db: Database
    celery: Celery
    keys: KeyStore
    queues: tuple[str, ...]
    migrations: Path
    #: Collectors computed at each scrape of ``/metrics`` (e.g. the database's backlog of queued rows).
    live_metrics: tuple[metrics.LiveCollector, ...] = field(default=())


class NoCookieSessions(SecureCookieSessionInterface):
    """The APIs authenticate every request by its key: no cookie session is opened (it cost each request
    a signing serializer built from the secret key) and none is ever set."""

    def open_session(self, app, request):
        return None


class EnvelopeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, UTF-8 as is and keys in the answer's order, with its encoders made once.

    ``json.dumps`` with options builds an encoder per call: a third of what answering an envelope cost.
    """

    ensure_ascii = False
    sort_keys = False

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self._encoders: dict[tuple, json.JSONEncoder] = {}

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            options = tuple(sorted(kwargs.items()))
            encoder = self._encoders.get(options)
        except TypeError:  # an option that is not hashable: as Flask does it
            return super().dumps(obj, **kwargs)
        if encoder is None:
            kwargs.setdefault("default", self.default)
            kwargs.setdefault("ensure_ascii", self.ensure_ascii)
            kwargs.setdefault("sort_keys", self.sort_keys)
            cls = kwargs.pop("cls", json.JSONEncoder)
            encoder = cls(**kwargs)
            if len(self._encoders) < 16:
                self._encoders[options] = encoder
        return encoder.encode(obj)


class ServiceFlask(Flask):
    json_provider_class = EnvelopeJSONProvider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_functions: set = set()

    def ensure_sync(self, func: Callable) -> Callable:
        """Flask asks this of every hook and view on every request; a function known not to be a coroutine
        function is answered from a set (the code object's flags were inspected each time)."""
        code = getattr(func, "__func__", func)  # a bound method: its function
        try:
            if code in self._plain_functions:
                return func
        except TypeError:  # not hashable
            return super().ensure_sync(func)
        wrapped = super().ensure_sync(func)
        if wrapped is func and len(self._plain_functions) < 10_000:
            self._plain_functions.add(code)
        return wrapped


def build_app(
    service: Service, settings: dict[str, Any], celery_settings: dict | None = None
) -> tuple[Flask, EnvelopeApi]:
    app = ServiceFlask(service.import_name)
    app.config.update(settings)
    app.config.update(
        API_TITLE=service.title,
        API_VERSION="1.0.0",
        MAX_CONTENT_LENGTH=settings["MAX_BODY_BYTES"],
        TESTING=settings["ENV"] == "testing",
    )
    app.session_interface = NoCookieSessions()
    if settings["ENV"] != "testing":
        configure_logging(service.import_name, settings.get("LOG_LEVEL", "INFO"))

    service.db.init_app(app, settings["DATABASE_URL"], pool_size=settings["DB_POOL_SIZE"])
    Migrate(app, service.db, directory=str(service.migrations))
    bind_celery(service.celery, app, service.queues, celery_settings)
    ApiKeyAuthenticator(service.keys.lookup).init_app(app)

    api = EnvelopeApi(app)
    api.register_blueprint(me_blueprint(service.api_prefix))
    app.register_blueprint(health_blueprint(service.db, service.celery))
    queue_depth = metrics.QueueDepthCollector(service.celery, service.queues)
    metrics.init_app(app, (lambda _app: queue_depth, *service.live_metrics))
    metrics.install_worker_exporter(service.celery, settings["WORKER_METRICS_PORT"])
    return app, api
