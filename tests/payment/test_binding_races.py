"""Bindings under concurrent requests, on PostgreSQL with committed data and real threads.

Two binds of one channel leave exactly one binding; a delete racing a bind never leaves a binding to a
deleted config. Small random pauses inside the transactions make the requests overlap.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text

from payment_service.configs import bindings, center
from payment_service.models import PaymentConfig
from tests.factories import create_payment_tenant
from tests.payment.conftest import CONFIGS_URL, headers_of, params_for

pytestmark = pytest.mark.postgres
ROUNDS = 8


@pytest.fixture
def race(committed_app, monkeypatch):
    """``(app, api_key)`` on a committed database, with jitter inside the locked sections."""
    from payment_service.extensions import db

    with committed_app.app_context():
        _tenant, api_key = create_payment_tenant(db.session)
    find, count = bindings._find_binding, center.count_bound_sites

    def find_slowly(*args):
        time.sleep(random.uniform(0, 0.02))
        return find(*args)

    def count_slowly(*args):
        time.sleep(random.uniform(0, 0.02))
        return count(*args)

    monkeypatch.setattr(bindings, "_find_binding", find_slowly)
    monkeypatch.setattr(center, "count_bound_sites", count_slowly)
    return committed_app, api_key


def create(app, api_key, mode):
    body = {"name": f"并发-{mode}", "mode": mode, "params": params_for(mode)}
    response = app.test_client().post(CONFIGS_URL, json=body, headers=headers_of(api_key))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["config_id"]


def together(*calls):
    """Run the calls at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(run, call) for call in calls]]


def bind_call(app, api_key, site_id, config_id):
    def call():
        response = app.test_client().post(
            f"/api/v1/sites/{site_id}/payment-binding",
            json={"config_id": config_id},
            headers=headers_of(api_key),
        )
        return response.status_code, response.get_json()

    return call


def delete_call(app, api_key, config_id):
    def call():
        response = app.test_client().delete(f"{CONFIGS_URL}/{config_id}", headers=headers_of(api_key))
        return response.status_code, response.get_json()

    return call


def site_bindings(app, site_id):
    from payment_service.extensions import db

    with app.app_context():
        rows = db.session.execute(
            text("SELECT id, channel, config_id FROM site_bindings WHERE site_id = :site"), {"site": site_id}
        ).all()
        return [tuple(row) for row in rows]


def dangling_bindings(app) -> int:
    from payment_service.extensions import db

    with app.app_context():
        return db.session.scalar(
            text(
                "SELECT count(*) FROM site_bindings b LEFT JOIN payment_configs c ON c.id = b.config_id "
                "WHERE c.id IS NULL"
            )
        )


@pytest.mark.parametrize("already_bound", [False, True])
def test_two_concurrent_binds_of_one_channel_leave_exactly_one_binding(race, already_bound):
    app, api_key = race
    split, direct, previous = (
        create(app, api_key, mode) for mode in ("wechat_split", "wechat_direct", "wechat_direct")
    )
    for round_ in range(ROUNDS):
        site = f"RACE_{already_bound}_{round_}"
        if already_bound:
            assert bind_call(app, api_key, site, previous)()[0] == 200
        (status_a, a), (status_b, b) = together(
            bind_call(app, api_key, site, split), bind_call(app, api_key, site, direct)
        )
        assert (status_a, status_b) == (200, 200), (a, b)
        rows = site_bindings(app, site)
        assert len(rows) == 1 and rows[0][1] == "wechat"
        final, other = (a, b) if rows[0][0] == a["data"]["binding_id"] else (b, a)
        assert rows[0] == (final["data"]["binding_id"], "wechat", final["data"]["config_id"])
        # The later bind replaced the earlier one, and says so.
        assert final["data"]["replaced_binding_id"] == other["data"]["binding_id"]


def test_two_concurrent_binds_of_the_same_config_agree_on_one_binding(race):
    app, api_key = race
    config_id = create(app, api_key, "alipay_direct")
    for round_ in range(ROUNDS):
        site = f"SAME_{round_}"
        (status_a, a), (status_b, b) = together(
            bind_call(app, api_key, site, config_id), bind_call(app, api_key, site, config_id)
        )
        assert (status_a, status_b) == (200, 200)
        assert a["data"]["binding_id"] == b["data"]["binding_id"]
        assert site_bindings(app, site) == [(a["data"]["binding_id"], "alipay", config_id)]


def test_a_delete_racing_a_bind_never_leaves_a_binding_to_a_deleted_config(race):
    app, api_key = race
    outcomes = set()
    for round_ in range(ROUNDS * 2):
        config_id = create(app, api_key, "alipay_direct")
        site = f"DEL_{round_}"
        (delete_status, deleted), (bind_status, bound) = together(
            delete_call(app, api_key, config_id), bind_call(app, api_key, site, config_id)
        )
        outcomes.add((delete_status, bind_status))
        if delete_status == 200:
            assert bind_status == 404, bound
            assert site_bindings(app, site) == []
        else:
            assert (delete_status, bind_status) == (409, 200), (deleted, bound)
            assert deleted["data"] == {"bound_sites": 1}
            assert site_bindings(app, site) == [(bound["data"]["binding_id"], "alipay", config_id)]
    assert outcomes <= {(200, 404), (409, 200)}
    assert dangling_bindings(app) == 0


def test_a_bind_waits_for_a_delete_holding_the_config_and_then_finds_it_gone(race):
    app, api_key = race
    from payment_service.extensions import db

    config_id = create(app, api_key, "alipay_direct")
    with app.app_context():
        session = db.session
        session.scalar(select(PaymentConfig).where(PaymentConfig.id == config_id).with_for_update())
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(bind_call(app, api_key, "WAIT_1", config_id))
            time.sleep(0.3)
            assert not pending.done(), "the bind did not wait for the config's row lock"
            session.execute(text("DELETE FROM payment_configs WHERE id = :id"), {"id": config_id})
            session.commit()
            status, body = pending.result(timeout=10)
    assert status == 404 and body["message"] == "支付配置不存在"
    assert site_bindings(app, "WAIT_1") == []


def test_the_database_refuses_a_second_binding_of_a_channel_and_a_binding_to_nothing(race):
    from sqlalchemy.exc import IntegrityError

    from payment_service.extensions import db

    app, api_key = race
    config_id = create(app, api_key, "alipay_direct")
    assert bind_call(app, api_key, "UNIQ_1", config_id)()[0] == 200
    insert = text(
        "INSERT INTO site_bindings (id, tenant_id, site_id, channel, config_id, bound_at) "
        "SELECT :id, tenant_id, 'UNIQ_1', 'alipay', :config, now() FROM payment_configs WHERE id = :config"
    )
    with app.app_context():
        with pytest.raises(IntegrityError, match="uq_site_bindings"):
            db.session.execute(insert, {"id": "BIND_dup", "config": config_id})
        db.session.rollback()
        with pytest.raises(IntegrityError, match="fk_site_bindings_config_id"):
            db.session.execute(text("DELETE FROM payment_configs WHERE id = :id"), {"id": config_id})
        db.session.rollback()
