"""Domain rules of bindings the orders API relies on: routing by site + channel, credentials, retries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payment_service.channels import AlipayClient, WechatPayClient, build_channel, split_amounts
from payment_service.configs import bindings
from payment_service.configs.center import create_config, get_config, load_credentials, set_status
from payment_service.models import SiteBinding
from shared.envelope import BadRequestError, ConflictError, NotFoundError
from tests.payment.conftest import API_V3_KEY, SUB_MCH_ID, params_for


def new_config(session, actor, mode, **overrides):
    return create_config(session, actor, f"配置-{mode}", mode, params_for(mode, **overrides))


def test_order_routing_finds_the_sites_binding_for_the_channel(payment_db, actor):
    wechat = new_config(payment_db, actor, "wechat_split")
    alipay = new_config(payment_db, actor, "alipay_direct")
    bindings.bind_site(payment_db, actor, "SITE_001", wechat.id)
    bound = bindings.bind_site(payment_db, actor, "SITE_001", alipay.id)
    found = bindings.get_binding_for_order(payment_db, actor.tenant_id, "SITE_001", "alipay")
    assert (found.binding_id, found.config.id) == (bound.binding.id, alipay.id)
    assert (
        bindings.get_binding_for_order(payment_db, actor.tenant_id, "SITE_001", "wechat").config.id
        == wechat.id
    )


@pytest.mark.parametrize(
    ("channel", "message"), [("alipay", "该网点暂不支持支付宝支付"), ("wechat", "该网点暂不支持微信支付")]
)
def test_order_routing_without_a_binding_answers_the_contracts_400(payment_db, actor, channel, message):
    other = new_config(payment_db, actor, "wechat_direct" if channel == "alipay" else "alipay_direct")
    bindings.bind_site(payment_db, actor, "SITE_001", other.id)
    with pytest.raises(BadRequestError) as caught:
        bindings.get_binding_for_order(payment_db, actor.tenant_id, "SITE_001", channel)
    assert caught.value.message == message


def test_order_routing_is_scoped_to_the_tenant(payment_db, actor, other_admin):
    config = new_config(payment_db, actor, "alipay_direct")
    bindings.bind_site(payment_db, actor, "SITE_001", config.id)
    from tests.payment.conftest import principal_of

    with pytest.raises(BadRequestError, match="该网点暂不支持支付宝支付"):
        bindings.get_binding_for_order(payment_db, principal_of(other_admin).tenant_id, "SITE_001", "alipay")


def test_a_disabled_config_stops_orders_until_it_is_enabled(payment_db, actor):
    config = new_config(payment_db, actor, "wechat_direct")
    bindings.bind_site(payment_db, actor, "SITE_001", config.id)
    set_status(payment_db, actor, config.id, "disabled")
    with pytest.raises(BadRequestError) as caught:
        bindings.get_binding_for_order(payment_db, actor.tenant_id, "SITE_001", "wechat")
    assert caught.value.message == "该网点的微信支付配置已停用,暂时无法支付"
    set_status(payment_db, actor, config.id, "enabled")
    assert (
        bindings.get_binding_for_order(payment_db, actor.tenant_id, "SITE_001", "wechat").config.id
        == config.id
    )


@pytest.mark.parametrize(("site_id", "channel"), [("SITE_001", "unionpay"), ("bad site", "wechat")])
def test_order_routing_refuses_an_unknown_channel_or_malformed_site(payment_db, actor, site_id, channel):
    with pytest.raises(BadRequestError):
        bindings.get_binding_for_order(payment_db, actor.tenant_id, site_id, channel)


def test_load_credentials_gives_decrypted_params_a_channel_can_be_built_from(payment_db, actor):
    config = new_config(payment_db, actor, "wechat_split")
    credentials = load_credentials(get_config(payment_db, actor.tenant_id, config.id))
    assert credentials["api_key"] == API_V3_KEY
    assert credentials["merchant_private_key"] == params_for("wechat_split")["merchant_private_key"]
    receivers = credentials["profit_sharing"]["receivers"]
    assert [item["ratio"] for item in receivers] == [Decimal("0.15"), Decimal("0.85")]
    client = build_channel(config.mode, credentials)
    assert isinstance(client, WechatPayClient) and client.credentials.sub_mch_id == SUB_MCH_ID
    # The sub-merchant's own 0.85 stays; the platform's 0.15 of 10001 fen is transferred, floored.
    assert [(item["merchant_id"], fen) for item, fen in split_amounts(10001, receivers, SUB_MCH_ID)] == [
        ("1001", 1500)
    ]

    alipay = new_config(payment_db, actor, "alipay_direct")
    assert isinstance(build_channel(alipay.mode, load_credentials(alipay)), AlipayClient)


def test_a_bind_that_loses_the_insert_race_retries_and_replaces(payment_db, actor, monkeypatch):
    """Simulates the concurrent bind that committed between our check and our insert."""
    first = new_config(payment_db, actor, "wechat_direct")
    second = new_config(payment_db, actor, "wechat_split")
    winner = bindings.bind_site(payment_db, actor, "SITE_001", first.id)
    real_find = bindings._find_binding
    calls = []

    def blind_first_time(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args)

    monkeypatch.setattr(bindings, "_find_binding", blind_first_time)
    result = bindings.bind_site(payment_db, actor, "SITE_001", second.id)
    assert len(calls) == 2
    assert result.replaced_binding_id == winner.binding.id
    rows = payment_db.query(SiteBinding).filter_by(tenant_id=actor.tenant_id, site_id="SITE_001").all()
    assert [(row.id, row.config_id) for row in rows] == [(result.binding.id, second.id)]


def test_a_bind_that_keeps_losing_answers_409(payment_db, actor, monkeypatch):
    first = new_config(payment_db, actor, "wechat_direct")
    second = new_config(payment_db, actor, "wechat_split")
    bindings.bind_site(payment_db, actor, "SITE_001", first.id)
    monkeypatch.setattr(bindings, "_find_binding", lambda *args: None)
    with pytest.raises(ConflictError, match="请重试"):
        bindings.bind_site(payment_db, actor, "SITE_001", second.id)


def test_unbind_of_an_unknown_binding_is_404(payment_db, actor):
    with pytest.raises(NotFoundError):
        bindings.unbind_site(payment_db, actor, "SITE_001", "BIND_20260101_nothing")


def test_a_delete_the_foreign_key_stops_is_409_with_the_count(payment_db, actor, monkeypatch):
    """Where row locks do not exist, the foreign key is what keeps a binding from pointing at nothing."""
    from payment_service.configs import center

    config = new_config(payment_db, actor, "alipay_direct")
    bindings.bind_site(payment_db, actor, "SITE_001", config.id)
    counts = iter([0, 1])
    monkeypatch.setattr(center, "count_bound_sites", lambda *args: next(counts))
    with pytest.raises(ConflictError) as caught:
        center.delete_config(payment_db, actor, config.id)
    assert caught.value.data == {"bound_sites": 1}
    assert get_config(payment_db, actor.tenant_id, config.id).id == config.id
