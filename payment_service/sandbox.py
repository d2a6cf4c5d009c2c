"""The local sandbox: point the service at the upstream fakes and pay orders by hand (never in production).

``flask --app payment_service sandbox setup --tenant TNT_… --site SITE_001`` registers new merchants
(fresh ids, throwaway keys) with the fakes, then creates and binds a wechat_split config (10 % to a platform
receiver) and an alipay_direct config for the site. ``flask --app payment_service sandbox keys --mode MODE``
registers one such merchant and prints a ready-to-POST ``/api/v1/payment/configs`` body for it, for a config
made by hand through the API. ``flask --app payment_service sandbox pay TXN_…`` makes the fake
"pay" a pending order: it posts its signed notification to this service, as the real upstream would.
A refund asked through the API (``POST /orders/{id}/refunds``) stays processing on WeChat until
``flask --app payment_service sandbox settle-refund RFD_… [--status SUCCESS|ABNORMAL|CLOSED]`` makes the
fake settle it and post its REFUND.* notification (an Alipay refund left at fund_change N is settled too).
The fakes run as ``python -m tests.fakes.wechatpay --port 8601 --allow-http-notify`` and
``python -m tests.fakes.alipay --port 8602``; see docs/payment-sandbox.md.
"""

from __future__ import annotations

import secrets
import string
from typing import Any
from urllib.parse import urlsplit

import click
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from payment_service.channels.alipay import GATEWAY_URL
from payment_service.channels.wechat import API_BASE_URL
from payment_service.configs.bindings import bind_site
from payment_service.configs.center import create_config
from payment_service.configs.params import MODES
from payment_service.extensions import db
from payment_service.models import PaymentOrder, Refund, Tenant
from shared.auth import Principal
from shared.tenancy import echo_json

CONTROL = "/__fake__"
TIMEOUT_SECONDS = 10
PLATFORM_MCHID, WECHAT_APPID = "1900000999", "wx0000000000sandbox"
CONFIG_NAMES = {
    "wechat_split": "沙箱-微信服务商分账",
    "wechat_direct": "沙箱-微信直连商户",
    "alipay_direct": "沙箱-支付宝直连",
}
REAL_UPSTREAMS = (urlsplit(API_BASE_URL).netloc, urlsplit(GATEWAY_URL).netloc)


class SandboxError(click.ClickException):
    pass


def wechat_fake_url() -> str:
    return _fake_url(current_app.config["WECHATPAY_BASE_URL"])


def alipay_fake_url() -> str:
    return _fake_url(current_app.config["ALIPAY_GATEWAY_URL"])


def set_up_site(session: Session, tenant_id: str, site_id: str) -> dict[str, Any]:
    """Register fresh merchant keys with both fakes; create and bind a config of each channel to the site."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise SandboxError(f"no tenant {tenant_id}")
    actor = Principal(tenant.id, tenant.name, "sandbox-cli", "", frozenset({"payment:admin"}))
    wechat, alipay = (
        create_config(session, actor, CONFIG_NAMES[mode], mode, sandbox_params(mode))
        for mode in ("wechat_split", "alipay_direct")
    )
    for config in (wechat, alipay):
        bind_site(session, actor, site_id, config.id)
    return {"site_id": site_id, "wechat_config_id": wechat.id, "alipay_config_id": alipay.id}


def config_request(mode: str) -> dict[str, Any]:
    """A ``POST /api/v1/payment/configs`` body of ``mode`` whose merchant the fake of its channel knows."""
    return {"name": CONFIG_NAMES[mode], "mode": mode, "params": sandbox_params(mode)}


def sandbox_params(mode: str) -> dict[str, Any]:
    """Params of ``mode`` for a new merchant (fresh ids, throwaway keys) registered with the matching fake."""
    return _alipay_params() if mode == "alipay_direct" else _wechat_params(mode)


def pay_order(session: Session, transaction_id: str) -> dict[str, Any]:
    """Have the fake pay the order: it posts the signed notification here and reports what we answered."""
    order = session.get(PaymentOrder, transaction_id)
    if order is None:
        raise SandboxError(f"no order {transaction_id}")
    base = wechat_fake_url() if order.channel == "wechat" else alipay_fake_url()
    return _call("POST", f"{base}{CONTROL}/pay/{transaction_id}", {})


REFUND_OUTCOMES = ("SUCCESS", "ABNORMAL", "CLOSED")


def settle_refund(session: Session, refund_id: str, status: str = "SUCCESS") -> dict[str, Any]:
    """Have the fake finish a refund: WeChat posts its REFUND.<status> notification here; Alipay (which has
    no refund notification) marks it refunded, and the next query of this service finds it so."""
    refund = session.get(Refund, refund_id)
    if refund is None:
        raise SandboxError(f"no refund {refund_id}")
    order = session.get(PaymentOrder, refund.order_id)
    if order.channel == "wechat":
        return _call("POST", f"{wechat_fake_url()}{CONTROL}/refunds/{refund_id}/settle", {"status": status})
    if status != "SUCCESS":
        raise SandboxError("an Alipay refund only settles as SUCCESS")
    body = {"out_trade_no": order.id, "out_request_no": refund_id}
    return _call("POST", f"{alipay_fake_url()}{CONTROL}/refunds/settle", body)


def _fake_url(configured: str) -> str:
    parts = urlsplit(configured)
    if parts.netloc in REAL_UPSTREAMS:
        raise SandboxError(
            f"{configured} is the real upstream: start the fakes and set PAYMENT_WECHATPAY_BASE_URL / "
            "PAYMENT_ALIPAY_GATEWAY_URL to them (docs/payment-sandbox.md)"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        answer = requests.request(method, url, json=body, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise SandboxError(
            f"the fake at {url} does not answer ({type(exc).__name__}); is it running?"
        ) from None
    if answer.status_code != 200:
        raise SandboxError(f"the fake refused {url}: {answer.text}")
    return answer.json()


def _new_key() -> tuple[str, str]:
    """A throwaway RSA pair as (private PKCS#8 PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def _new_merchant_id(prefix: str = "19", length: int = 10) -> str:
    """A random id, so every run registers a new merchant and never replaces the keys of an earlier one."""
    return prefix + "".join(secrets.choice(string.digits) for _ in range(length - len(prefix)))


def _wechat_params(mode: str) -> dict[str, Any]:
    """Register a new merchant with the WeChat fake: a service provider with one sub-merchant (wechat_split,
    10 % to a platform receiver) or a merchant taking its own payments (wechat_direct)."""
    mchid = _new_merchant_id()
    if mode == "wechat_split":
        sub_mchid = _new_merchant_id()
        own = {"service_mch_id": mchid, "sub_mch_id": sub_mchid, "profit_sharing": _sharing_with(sub_mchid)}
        registration = {"kind": "service_provider", "sub_mchids": [sub_mchid]}
    else:
        own, registration = {"mch_id": mchid}, {"kind": "direct"}
    base = wechat_fake_url()
    platform = _call("GET", f"{base}{CONTROL}/platform")
    private_pem, public_pem = _new_key()
    serial_no = secrets.token_hex(20).upper()
    api_v3_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    merchant = {"mchid": mchid, "serial_no": serial_no, "public_key": public_pem, "api_v3_key": api_v3_key}
    _call("POST", f"{base}{CONTROL}/merchants", {**merchant, "appids": [WECHAT_APPID], **registration})
    return {
        **own,
        "app_id": WECHAT_APPID,
        "api_key": api_v3_key,
        "merchant_serial_no": serial_no,
        "merchant_private_key": private_pem,
        "wechatpay_public_key_id": platform["public_key_id"],
        "wechatpay_public_key": platform["public_key"],
    }


def _sharing_with(sub_mchid: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "type": "ratio",
        "receivers": [
            {"receiver_type": "platform", "merchant_id": PLATFORM_MCHID, "ratio": "0.1", "name": "沙箱平台"},
            {"receiver_type": "franchisee", "merchant_id": sub_mchid, "ratio": "0.9"},
        ],
    }


def _alipay_params() -> dict[str, Any]:
    """Register a new app with the Alipay fake; the fake gives it its seller id."""
    base = alipay_fake_url()
    platform = _call("GET", f"{base}{CONTROL}/platform")
    private_pem, public_pem = _new_key()
    app_id = _new_merchant_id("2021", 16)
    app = _call("POST", f"{base}{CONTROL}/apps", {"app_id": app_id, "public_key": public_pem})
    return {
        "app_id": app_id,
        "app_private_key": private_pem,
        "alipay_public_key": platform["alipay_public_key"],
        "seller_id": app["seller_id"],
    }


def register_sandbox_commands(app: Flask) -> None:
    group = AppGroup("sandbox", help="Local sandbox against the upstream fakes (development only).")

    @group.command("setup")
    @click.option(
        "--tenant", "tenant_id", required=True, help="Tenant id (flask --app payment_service tenant list)."
    )
    @click.option("--site", "site_id", default="SITE_001", show_default=True, help="Site to bind.")
    def setup(tenant_id: str, site_id: str) -> None:
        """Register keys with the fakes; create and bind a WeChat and an Alipay config for the site."""
        echo_json(set_up_site(db.session, tenant_id, site_id))

    @group.command("keys")
    @click.option("--mode", type=click.Choice(MODES), required=True, help="The config's mode.")
    def keys(mode: str) -> None:
        """Register a new merchant with the fake; print a POST /api/v1/payment/configs body for it."""
        echo_json(config_request(mode))

    @group.command("pay")
    @click.argument("transaction_id")
    def pay(transaction_id: str) -> None:
        """Pay a pending sandbox order: the fake posts its signed notification to this service."""
        echo_json(pay_order(db.session, transaction_id))

    @group.command("settle-refund")
    @click.argument("refund_id")
    @click.option(
        "--status",
        type=click.Choice(REFUND_OUTCOMES),
        default="SUCCESS",
        show_default=True,
        help="How WeChat ends the refund (ABNORMAL: the payer's account cannot take it).",
    )
    def settle(refund_id: str, status: str) -> None:
        """Settle a processing sandbox refund: the WeChat fake posts its REFUND.* notification here."""
        echo_json(settle_refund(db.session, refund_id, status))

    app.cli.add_command(group)
