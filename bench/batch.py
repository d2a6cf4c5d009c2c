"""Target 2: batch-send of 1,000 items, median latency against a floor of one multi-row INSERT of 1,000 rows
into the same PostgreSQL (timed from this process, as the service's request is)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.stack import (
    GUNICORN_WORKERS,
    REDIS_URL,
    create_database,
    drop_database,
    percentile,
    sms_env,
    sms_template,
    sms_tenant,
    start_gunicorn,
)
from shared.db import normalize_url

ITEMS = 1000

floor_metadata = sa.MetaData()
floor_rows = sa.Table(
    "bench_floor_batch",
    floor_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("mobile", sa.String(11), nullable=False),
    sa.Column("variables", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
)


def run(log_dir: Path, requests_count: int) -> dict:
    sms_db = create_database("batch")
    env = sms_env(sms_db, REDIS_URL=REDIS_URL)
    tenant = sms_tenant(env)
    api, base_url = start_gunicorn("sms_service:create_app()", env, log_dir, workers=GUNICORN_WORKERS)
    try:
        template_id = sms_template(base_url, tenant["api_key"])
        session = requests.Session()
        session.headers.update({"X-Api-Key": tenant["api_key"], "Content-Type": "application/json"})
        service_ms = []
        for round_number in range(requests_count + 1):  # the first one warms the worker up
            items = [
                {"mobile": f"13{round_number % 10}{n:08d}", "variables": {"code": f"{n % 1_000_000:06d}"}}
                for n in range(ITEMS * round_number, ITEMS * (round_number + 1))
            ]
            body = json.dumps({"template_id": template_id, "items": items})
            started = time.perf_counter()
            response = session.post(base_url + "/api/v1/sms/batch-send", data=body, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if round_number:
                service_ms.append(elapsed)
        floor_ms = floor_inserts(sms_db, requests_count)
    finally:
        api.stop()
        drop_database(sms_db)
    service, floor = percentile(service_ms, 0.5), percentile(floor_ms, 0.5)
    return {
        "name": f"Batch accept (batch-send of {ITEMS} items, median of {requests_count})",
        "rows": [
            (
                "batch-send median",
                f"{service:.1f} ms",
                f"{floor:.1f} ms (1 INSERT of {ITEMS} rows)",
                service / floor,
                "≤ 2.0",
            ),
        ],
        "ok": service / floor <= 2.0,
    }


def floor_inserts(database_url: str, count: int) -> list[float]:
    """One multi-row INSERT of 1,000 rows per transaction, through the same driver, in the same database."""
    engine = sa.create_engine(normalize_url(database_url))
    floor_metadata.create_all(engine)
    timings = []
    try:
        for round_number in range(count + 1):
            rows = [
                {"id": uuid.uuid4().hex, "mobile": f"13{n:09d}"[:11], "variables": '{"code": "123456"}'}
                for n in range(ITEMS * round_number, ITEMS * (round_number + 1))
            ]
            started = time.perf_counter()
            with engine.begin() as connection:
                connection.execute(sa.insert(floor_rows).values(rows))
            if round_number:
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
    return timings
