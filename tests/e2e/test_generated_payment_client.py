"""The payment service driven only through a client generated from openapi/payment.json, against gunicorn, a
celery worker, PostgreSQL, RabbitMQ and the WeChat Pay and Alipay fakes: configs, bindings, orders, refunds
and close, every answer parsed whole into its documented model (pending orders with their nulls included)."""

from __future__ import annotations

import json

import pytest

from payment_service.settings import generate_secret_key
from tests.e2e.generated_clients import assert_nothing_lost, generate_client
from tests.e2e.processes import (
    free_port,
    run_cli,
    running,
    service_env,
    start_gunicorn,
    start_worker,
    wait_until,
)
from tests.fakes.payment_server import Answer, NotifyReceiver
from tests.fakes.payment_server import running as serving
from tests.payment.conftest import params_for
from tests.payment.orders.helpers import PUBLIC_KEY_ID, alipay_fake_app, order_body, wechat_fake_app

pytestmark = pytest.mark.e2e

SITE = "SITE_GENERATED"


@pytest.fixture(scope="module")
def payment(tmp_path_factory):
    return generate_client("payment.json", "payment_client", tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("payment-generated")
    wechat, alipay = wechat_fake_app(), alipay_fake_app()
    receiver = NotifyReceiver(lambda notification: Answer(200, b"ok"))
    port = free_port()
    with serving(wechat) as wechat_url, serving(alipay) as alipay_url, serving(receiver) as receiver_url:
        env = service_env(
            "PAYMENT",
            ENV="production",
            DATABASE_URL=databases.create("payment_generated_client"),
            BROKER_URL=broker_url,
            SECRET_KEY=generate_secret_key(),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            WECHATPAY_BASE_URL=wechat_url,
            ALIPAY_GATEWAY_URL=alipay_url + "/gateway.do",
            CHANNEL_TIMEOUT_SECONDS="2",
            NOTIFY_ALLOW_PRIVATE="true",
        )
        run_cli("payment_service", env, "db", "upgrade")
        api, base_url = start_gunicorn("payment_service:create_app()", env, log_dir, port=port)
        worker = start_worker("payment_service.worker", env, log_dir, extra=["-P", "threads", "-c", "2"])
        with running(api, worker):
            yield {"base_url": base_url, "env": env, "wechat": wechat, "notify_url": receiver_url + "/pay"}
            assert "Traceback" not in api.log(), api.log()[-3000:]
            assert "Traceback" not in worker.log(), worker.log()[-3000:]


def parsed(response, model):
    """The generated client's reading of an answer, checked whole against the raw JSON."""
    assert isinstance(response.parsed, model), (response.status_code, response.content[:400])
    assert_nothing_lost(json.loads(response.content), response.parsed)
    return response.parsed


def client_for(payment, stack, api_key: str):
    return payment.AuthenticatedClient(
        base_url=stack["base_url"], token=api_key, prefix="", auth_header_name="X-Api-Key", timeout=15
    )


def test_configs_bindings_orders_refunds_and_close_through_the_generated_client(payment, stack):
    from payment_client import models
    from payment_client.api.me import get_me
    from payment_client.api.payment_configs import (
        create_config,
        delete_config,
        get_config,
        get_config_history,
        list_configs,
        set_config_status,
        update_config,
    )
    from payment_client.api.payment_orders import close_order, create_order, get_order, list_orders
    from payment_client.api.payment_refunds import create_refund, get_refund, list_order_refunds
    from payment_client.api.site_bindings import bind_site, get_site_bindings, unbind_site

    tenant = json.loads(run_cli("payment_service", stack["env"], "tenant", "create", "--name", "generated"))
    client = client_for(payment, stack, tenant["api_key"])
    assert (
        parsed(get_me.sync_detailed(client=client), models.MeEnvelope).data.tenant_id == tenant["tenant_id"]
    )

    configs = {}
    # The create body is a oneOf by mode: one model per mode, its params typed for that mode.
    for mode, body_model, mode_enum, params_model, overrides in (
        (
            "wechat_direct",
            models.WechatDirectConfigCreate,
            models.WechatDirectConfigCreateMode,
            models.WechatDirectParams,
            {"wechatpay_public_key_id": PUBLIC_KEY_ID},
        ),
        (
            "alipay_direct",
            models.AlipayDirectConfigCreate,
            models.AlipayDirectConfigCreateMode,
            models.AlipayDirectParams,
            {},
        ),
    ):
        created = parsed(
            create_config.sync_detailed(
                client=client,
                body=body_model(
                    name=f"generated-{mode}",
                    mode=mode_enum(mode),
                    params=params_model.from_dict(params_for(mode, **overrides)),
                ),
            ),
            models.ConfigCreatedEnvelope,
        )
        configs[mode] = created.data.config_id
    direct = configs["wechat_direct"]
    detail = parsed(get_config.sync_detailed(direct, client=client), models.ConfigDetailEnvelope)
    assert detail.data.mode == "wechat_direct" and detail.data.params["api_key"] == "***"
    renamed = parsed(
        update_config.sync_detailed(direct, client=client, body=models.ConfigUpdateArgs(name="门店微信")),
        models.ConfigDetailEnvelope,
    )
    assert renamed.data.name == "门店微信"
    only_alipay = parsed(
        list_configs.sync_detailed(client=client, mode=models.ListConfigsMode.ALIPAY_DIRECT),
        models.ConfigSummaryPageEnvelope,
    )
    assert [c.config_id for c in only_alipay.data.list_] == [configs["alipay_direct"]]
    for status in (models.ConfigStatusArgsStatus.DISABLED, models.ConfigStatusArgsStatus.ENABLED):
        parsed(
            set_config_status.sync_detailed(
                direct, client=client, body=models.ConfigStatusArgs(status=status)
            ),
            models.ConfigDetailEnvelope,
        )
    history = parsed(get_config_history.sync_detailed(direct, client=client), models.HistoryEntryPageEnvelope)
    assert history.data.total >= 3

    bindings = {}
    for mode, config_id in configs.items():
        bound = parsed(
            bind_site.sync_detailed(SITE, client=client, body=models.BindArgs(config_id=config_id)),
            models.BindResultEnvelope,
        )
        bindings[mode] = bound.data.binding_id
    site = parsed(get_site_bindings.sync_detailed(SITE, client=client), models.SiteBindingsEnvelope)
    assert {b.config_id for b in site.data.bindings} == set(configs.values())

    # A pending order: paid_at, profit_sharing and forwarding are null, and it still parses.
    placed = parsed(
        create_order.sync_detailed(
            client=client,
            body=models.OrderArgs.from_dict(
                order_body(site_id=SITE, amount=20.0, out_order_no="GEN-1", notify_url=stack["notify_url"])
            ),
        ),
        models.OrderCreatedEnvelope,
    )
    transaction_id = placed.data.transaction_id
    pending = parsed(get_order.sync_detailed(transaction_id, client=client), models.OrderEnvelope)
    assert pending.data.status == models.OrderStatus.PENDING and pending.data.paid_at is None
    assert pending.data.profit_sharing is None

    assert stack["wechat"].pay(transaction_id).status == 204
    wait_until(
        lambda: (
            get_order.sync_detailed(transaction_id, client=client).parsed.data.status
            == models.OrderStatus.PAID
        ),
        20,
        "the order paid",
    )
    paid = parsed(get_order.sync_detailed(transaction_id, client=client), models.OrderEnvelope)
    assert isinstance(paid.data.forwarding, models.ForwardingState) and paid.data.paid_at is not None
    listed = parsed(
        list_orders.sync_detailed(client=client, status=models.ListOrdersStatus.PAID),
        models.OrderPageEnvelope,
    )
    assert [o.transaction_id for o in listed.data.list_] == [transaction_id]

    refund = parsed(
        create_refund.sync_detailed(
            transaction_id, client=client, body=models.RefundArgs(amount=5.0, reason="洗衣机故障")
        ),
        models.RefundCreatedEnvelope,
    )
    refund_id = refund.data.refund_id
    stack["wechat"].settle_refund(refund_id)
    wait_until(
        lambda: (
            get_refund.sync_detailed(refund_id, client=client).parsed.data.status
            == models.RefundStatus.SUCCESS
        ),
        20,
        "the refund settled",
    )
    shown = parsed(get_refund.sync_detailed(refund_id, client=client), models.RefundEnvelope)
    assert shown.data.amount == 5.0 and shown.data.success_at is not None
    refunds = parsed(
        list_order_refunds.sync_detailed(transaction_id, client=client), models.RefundPageEnvelope
    )
    assert [r.refund_id for r in refunds.data.list_] == [refund_id]
    after = parsed(get_order.sync_detailed(transaction_id, client=client), models.OrderEnvelope)
    assert (after.data.refunded_amount, after.data.refunding_amount) == (5.0, 0.0)

    too_much = create_refund.sync_detailed(
        transaction_id, client=client, body=models.RefundArgs(amount=15.01)
    )
    assert too_much.status_code == 400 and parsed(too_much, models.ErrorEnvelope).data["refundable"] == 15.0
    cannot_close = close_order.sync_detailed(transaction_id, client=client)
    assert cannot_close.status_code == 409 and parsed(cannot_close, models.ErrorEnvelope).code == 409

    alipay_order = parsed(
        create_order.sync_detailed(
            client=client, body=models.OrderArgs.from_dict(order_body(site_id=SITE, channel="alipay"))
        ),
        models.OrderCreatedEnvelope,
    )
    closed = parsed(
        close_order.sync_detailed(alipay_order.data.transaction_id, client=client), models.OrderEnvelope
    )
    assert closed.data.status == models.OrderStatus.CLOSED

    unbound = parsed(
        unbind_site.sync_detailed(SITE, bindings["alipay_direct"], client=client), models.UnbindResultEnvelope
    )
    assert unbound.data.binding_id == bindings["alipay_direct"]
    missing = get_order.sync_detailed("TXN_20260101_unknown", client=client)
    assert missing.status_code == 404 and parsed(missing, models.ErrorEnvelope).code == 404
    deleted = parsed(
        delete_config.sync_detailed(configs["alipay_direct"], client=client), models.ConfigDeletedEnvelope
    )
    assert deleted.data.config_id == configs["alipay_direct"]
    still_bound = delete_config.sync_detailed(direct, client=client)
    assert still_bound.status_code == 409 and parsed(still_bound, models.ErrorEnvelope).code == 409
