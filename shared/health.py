"""``/healthz`` (the process answers) and ``/readyz`` (its database and broker answer)."""

from __future__ import annotations

import logging

from celery import Celery
from flask import Blueprint, jsonify
from sqlalchemy import text

from shared.db import Database
from shared.envelope import error_body, ok

logger = logging.getLogger(__name__)


def health_blueprint(db: Database, celery: Celery) -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    def healthz():
        return jsonify(ok({"status": "ok"}))

    @blueprint.get("/readyz")
    def readyz():
        checks = {"database": _check_database(db), "broker": _check_broker(celery)}
        if all(state == "ok" for state in checks.values()):
            return jsonify(ok(checks))
        response = jsonify(error_body(503, "服务暂不可用: 依赖未就绪", checks))
        response.status_code = 503
        return response

    return blueprint


def _check_database(db: Database) -> str:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("readiness: database unreachable: %s", type(exc).__name__)
        return "unreachable"


def _check_broker(celery: Celery) -> str:
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        logger.warning("readiness: broker unreachable: %s", type(exc).__name__)
        return "unreachable"
