"""Target 5: payment orders and WeChat notifications against floors built from the same parts.

The WeChat fake runs in this process (a thread; idle while wrk runs) because the notifications must be
signed with its platform key: orders placed during the order runs are paid in the fake and their signed,
encrypted notifications are then replayed by wrk, to the service and to the floor alike.
"""

from __future__ import annotations

import json
import string
import time
from pathlib import Path

import requests

from bench import payment_floor_app
from bench.load import LoadResult, wrk_post, wrk_replay
from bench.stack import (
    GUNICORN_WORKERS,
    broker_url,
    create_database,
    drop_database,
    free_port,
    max_child_rss_mb,
    run_cli,
    service_env,
    start_gunicorn,
    start_worker,
)
from payment_service.settings import generate_secret_key
from tests.fakes.payment_server import running
from tests.fakes.wechatpay import _now_rfc3339, _random
from tests.payment.conftest import params_for
from tests.payment.orders.helpers import PUBLIC_KEY_ID, wechat_fake_app

SITE = "SITE_BENCH"


def run(log_dir: Path, seconds: int, notifications: int) -> dict:
    fake = wechat_fake_app()
    params = params_for("wechat_direct", wechatpay_public_key_id=PUBLIC_KEY_ID)
    service_db, floor_db = create_database("payment"), create_database("payfloor")
    processes = []
    with running(fake) as fake_url:
        try:
            port = free_port()
            env = service_env(
                "PAYMENT",
                ENV="production",
                DATABASE_URL=service_db,
                BROKER_URL=broker_url(),
                SECRET_KEY=generate_secret_key(),
                PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                WECHATPAY_BASE_URL=fake_url,
                NOTIFY_ALLOW_PRIVATE="true",
            )
            env["GUNICORN_ACCESS_LOG"] = ""
            run_cli("payment_service", env, "db", "upgrade")
            tenant = json.loads(run_cli("payment_service", env, "tenant", "create", "--name", "bench"))
            api, base_url = start_gunicorn(
                "payment_service:create_app()", env, log_dir, port=port, workers=GUNICORN_WORKERS
            )
            processes.append(api)
            payment_floor_app.create_schema(floor_db)
            floor_port = free_port()
            floor_env = service_env(
                "BENCH_PAYFLOOR",
                DATABASE_URL=floor_db,
                PARAMS=json.dumps(params),
                WECHATPAY_BASE_URL=fake_url,
                NOTIFY_URL=f"http://127.0.0.1:{floor_port}/notify",
            )
            floor_env["GUNICORN_ACCESS_LOG"] = ""
            floor, floor_url = start_gunicorn(
                "bench.payment_floor_app:create_app()",
                floor_env,
                log_dir,
                port=floor_port,
                workers=GUNICORN_WORKERS,
            )
            processes.append(floor)
            config_id = configure(base_url, tenant["api_key"], params)

            order = {
                "site_id": SITE,
                "channel": "wechat",
                "amount": "20.00",
                "description": "washer 3, standard wash",  # ASCII: the wrk script carries it in Lua
                "payer_id": "o4GgauInH_RCEdvrrNGrntXDuBench",
                "notify_url": floor_url + "/forwarded",
            }
            headers = {"Content-Type": "application/json", "X-Api-Key": tenant["api_key"]}
            body = json.dumps(order, ensure_ascii=False)
            wrk_post(floor_url, "/order", body, headers, min(2, seconds))  # warm both
            wrk_post(base_url, "/api/v1/payment/order", body, headers, min(2, seconds))
            floor_orders = wrk_post(floor_url, "/order", body, headers, seconds)
            service_orders = wrk_post(base_url, "/api/v1/payment/order", body, headers, seconds)

            service_path = f"/api/v1/payment/notify/wechat/{config_id}"
            service_batch, floor_batch = paid_notifications(fake, base_url, service_path, notifications)
            floor_notify = wrk_replay(floor_url, floor_batch, seconds)
            service_notify = wrk_replay(base_url, service_batch, seconds)
            api_rss = max_child_rss_mb(api)
            # The worker starts only now: the forwards the paid orders owe would otherwise take the CPU the
            # notification runs are measured on (the floor owes none). It works through them for a while.
            worker = start_worker("payment_service.worker", env, log_dir, extra=["-c", "4"])
            processes.append(worker)
            time.sleep(min(seconds, 5))
            worker_rss = max_child_rss_mb(worker)
        finally:
            for process in processes:
                process.stop()
            drop_database(service_db)
            drop_database(floor_db)

    def ratio_rows(label: str, service: LoadResult, floor: LoadResult) -> list[tuple]:
        return [
            (
                f"{label} throughput",
                f"{service.requests_per_second:.0f} req/s",
                f"{floor.requests_per_second:.0f} req/s",
                service.requests_per_second / floor.requests_per_second,
                "≥ 0.65",
            ),
            (f"{label} p99", f"{service.p99_ms:.1f} ms", f"{floor.p99_ms:.1f} ms", None, ""),
            (f"{label} non-2xx / socket errors", str(service.non_2xx + service.errors), "", None, "0"),
        ]

    order_ratio = service_orders.requests_per_second / floor_orders.requests_per_second
    notify_ratio = service_notify.requests_per_second / floor_notify.requests_per_second
    failures = sum(run.non_2xx + run.errors for run in (service_orders, service_notify))
    return {
        "name": "Payment (POST /order and WeChat notifications, WeChat fake without latency, 16 connections)",
        "rows": [
            *ratio_rows("order", service_orders, floor_orders),
            *ratio_rows("notification", service_notify, floor_notify),
            ("payment gunicorn worker RSS", f"{api_rss:.0f} MB", "", None, "≤ 120 MB"),
            ("payment celery worker process RSS", f"{worker_rss:.0f} MB", "", None, "≤ 150 MB"),
        ],
        "ok": order_ratio >= 0.65
        and notify_ratio >= 0.65
        and failures == 0
        and api_rss <= 120
        and worker_rss <= 150,
    }


def configure(base_url: str, api_key: str, params: dict) -> str:
    """A wechat_direct config bound to the bench site; returns its id."""
    headers = {"X-Api-Key": api_key}
    created = requests.post(
        base_url + "/api/v1/payment/configs",
        json={"name": "bench-wechat", "mode": "wechat_direct", "params": params},
        headers=headers,
        timeout=30,
    )
    created.raise_for_status()
    config_id = created.json()["data"]["config_id"]
    bound = requests.post(
        f"{base_url}/api/v1/sites/{SITE}/payment-binding",
        json={"config_id": config_id},
        headers=headers,
        timeout=30,
    )
    bound.raise_for_status()
    return config_id


def paid_notifications(fake, service_url: str, service_path: str, limit: int):
    """Pay up to ``limit`` orders of each side in the fake (without delivering them) and build their signed
    notifications, as ``(path, headers, body)`` for wrk: the service's orders and the floor's."""
    service, floor = [], []
    for order in list(fake.orders.values()):
        notify_url = order.request["notify_url"]
        side = service if notify_url.startswith(service_url) else floor
        if len(side) >= limit:
            continue
        if order.trade_state == "NOTPAY":
            order.trade_state = "SUCCESS"
            order.transaction_id = "42000" + _random(string.digits, 23)
            order.success_time = _now_rfc3339()
        headers, body = fake.build_notification(order)
        side.append((service_path if side is service else "/notify", headers, body))
    return service, floor
