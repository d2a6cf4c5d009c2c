"""Target 1: SMS accept throughput and p99 against a floor of one INSERT per request (same gunicorn).

Service and floor take turns, a round each; the ratio reported is the median of the rounds' ratios, each
service run against the floor run beside it. The throughputs and p99s shown are the medians of each side.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench import floor_app
from bench.load import wrk_post
from bench.stack import (
    GUNICORN_WORKERS,
    REDIS_URL,
    create_database,
    drop_database,
    max_child_rss_mb,
    service_env,
    sms_env,
    sms_template,
    sms_tenant,
    start_gunicorn,
)


def run(log_dir: Path, seconds: int, rounds: int) -> dict:
    sms_db, floor_db = create_database("sms"), create_database("floor")
    # Production runs the limit counters in Redis: in the database, the tenant's daily-quota row is one
    # hot row every accepted send updates.
    env = sms_env(sms_db, REDIS_URL=REDIS_URL)
    tenant = sms_tenant(env)
    api, base_url = start_gunicorn("sms_service:create_app()", env, log_dir, workers=GUNICORN_WORKERS)
    floor_app.create_schema(floor_db)
    floor_env = service_env("BENCH", FLOOR_DATABASE_URL=floor_db)
    floor_env["GUNICORN_ACCESS_LOG"] = ""
    floor, floor_url = start_gunicorn(
        "bench.floor_app:create_app()", floor_env, log_dir, workers=GUNICORN_WORKERS
    )
    try:
        template_id = sms_template(base_url, tenant["api_key"])
        body = json.dumps(
            {"template_id": template_id, "mobiles": ["MOBILE"], "variables": {"code": "123456"}}
        )
        headers = {"Content-Type": "application/json", "X-Api-Key": tenant["api_key"]}
        service_runs, floor_runs = [], []
        warm = min(2, seconds)
        wrk_post(floor_url, "/send", body, headers, warm, mobile_prefix="30")  # warm both
        wrk_post(base_url, "/api/v1/sms/send", body, headers, warm, mobile_prefix="31")
        for round_number in range(rounds):
            # Alternate, so drift of a shared machine hits both sides alike.
            floor_runs.append(
                wrk_post(floor_url, "/send", body, headers, seconds, mobile_prefix="5" + str(round_number))
            )
            service_runs.append(
                wrk_post(
                    base_url,
                    "/api/v1/sms/send",
                    body,
                    headers,
                    seconds,
                    mobile_prefix="3" + str(round_number + 2),
                )
            )
        rss = max_child_rss_mb(api)
    finally:
        api.stop()
        floor.stop()
        drop_database(sms_db)
        drop_database(floor_db)

    service_rps = statistics.median(run.requests_per_second for run in service_runs)
    floor_rps = statistics.median(run.requests_per_second for run in floor_runs)
    service_p99 = statistics.median(run.p99_ms for run in service_runs)
    floor_p99 = statistics.median(run.p99_ms for run in floor_runs)
    # Each round's service run against the floor run just before it: the machine's speed drifts between
    # rounds by more than the gap measured, and a ratio of neighbours cancels the drift.
    throughput = statistics.median(
        service.requests_per_second / floor.requests_per_second
        for service, floor in zip(service_runs, floor_runs, strict=True)
    )
    p99 = statistics.median(
        service.p99_ms / floor.p99_ms for service, floor in zip(service_runs, floor_runs, strict=True)
    )
    failures = sum(run.non_2xx + run.errors for run in service_runs)
    return {
        "name": "SMS accept (POST /send, 1 mobile, 16 connections)",
        "rows": [
            ("throughput", f"{service_rps:.0f} req/s", f"{floor_rps:.0f} req/s", throughput, "≥ 0.65"),
            ("p99 latency", f"{service_p99:.1f} ms", f"{floor_p99:.1f} ms", p99, "≤ 2.0"),
            ("gunicorn worker RSS", f"{rss:.0f} MB", "", None, "≤ 120 MB"),
            ("non-2xx / socket errors", str(failures), "", None, "0"),
        ],
        "ok": throughput >= 0.65 and p99 <= 2.0 and rss <= 120 and failures == 0,
    }
