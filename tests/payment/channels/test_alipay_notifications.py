"""Alipay client: notification verification, amounts, credentials and key shapes."""

from __future__ import annotations

import base64
import textwrap
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from payment_service.channels.alipay import (
    AlipayClient,
    AlipayCredentials,
    fen_to_yuan,
    yuan_to_fen,
)
from payment_service.channels.base import NotificationRejected
from payment_service.channels.keys import KeyFormatError, load_private_key
from tests.fakes.keys import TestKeyPair
from tests.payment.channels.alipay_helpers import (
    alipay_notification,
)
from tests.payment.channels.conftest import ALIPAY_APP_ID, ALIPAY_GATEWAY, ALIPAY_SELLER_ID

# -- notifications --------------------------------------------------------------------------------------


def test_notification_is_verified_with_empty_values_kept(alipay_client, alipay_side_sdk, app_side_sdk):
    form = alipay_notification(alipay_side_sdk)

    notice = alipay_client.parse_notification(form)

    assert (notice.out_trade_no, notice.channel_transaction_id) == (
        "TXN_20260510_7Hq2mK9xPz",
        "2026051022001430011",
    )
    assert notice.amount_fen == 2000 and notice.paid and notice.trade_state == "TRADE_SUCCESS"
    assert notice.merchant_ids == {"app_id": ALIPAY_APP_ID, "seller_id": ALIPAY_SELLER_ID}
    assert notice.paid_at == datetime(2026, 5, 10, 10, 0, 5, tzinfo=UTC)
    # python-alipay-sdk's own verify accepts the same fields.
    data = dict(form)
    assert app_side_sdk.verify(data, data.pop("sign"))


def test_notification_from_the_raw_form_body(alipay_client, alipay_side_sdk):
    body = urlencode(alipay_notification(alipay_side_sdk)).encode()

    assert alipay_client.read_notification({"Content-Type": "application/x-www-form-urlencoded"}, body).paid


@pytest.mark.parametrize(
    ("status", "paid"), [("TRADE_FINISHED", True), ("WAIT_BUYER_PAY", False), ("TRADE_CLOSED", False)]
)
def test_notification_paid_only_for_success_statuses(alipay_client, alipay_side_sdk, status, paid):
    notice = alipay_client.parse_notification(alipay_notification(alipay_side_sdk, trade_status=status))

    assert notice.paid is paid and notice.trade_state == status


def test_tampered_amount_is_rejected(alipay_client, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    form["total_amount"] = "0.01"

    with pytest.raises(NotificationRejected, match="signature"):
        alipay_client.parse_notification(form)


def test_dropping_an_empty_value_breaks_the_signature(alipay_client, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    del form["passback_params"]

    with pytest.raises(NotificationRejected):
        alipay_client.parse_notification(form)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"app_id": "2021000000000000"}, "another app"), ({"seller_id": "2088000000000000"}, "another seller")],
)
def test_notification_for_someone_else_is_rejected(alipay_client, alipay_side_sdk, overrides, reason):
    with pytest.raises(NotificationRejected, match=reason):
        alipay_client.parse_notification(alipay_notification(alipay_side_sdk, **overrides))


def test_unsigned_or_wrong_type_notifications_are_rejected(alipay_client, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    with pytest.raises(NotificationRejected):
        alipay_client.parse_notification({k: v for k, v in form.items() if k != "sign"})
    with pytest.raises(NotificationRejected):
        alipay_client.parse_notification({**form, "sign_type": "RSA"})
    with pytest.raises(NotificationRejected):
        alipay_client.read_notification({}, b"\xff\xfe")


def test_notification_reply_is_plain_success(alipay_client):
    assert alipay_client.notification_reply(True).body == b"success"
    assert alipay_client.notification_reply(False).body != b"success"


# -- amounts and credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fen", "yuan"), [(1, "0.01"), (10, "0.10"), (2000, "20.00"), (123456, "1234.56")])
def test_amounts_round_trip(fen, yuan):
    assert fen_to_yuan(fen) == yuan and yuan_to_fen(yuan) == fen


@pytest.mark.parametrize("value", ["20.001", "-1.00", "1e3", "", "20.", " 20.00"])
def test_malformed_amounts_are_refused(value):
    with pytest.raises(ValueError):
        yuan_to_fen(value)


@pytest.mark.parametrize(
    "shape", ["private_pem", "private_pkcs1_pem", "private_base64", "private_pkcs1_base64"]
)
def test_every_private_key_shape_signs_the_same(app_keys, alipay_keys, shape):
    credentials = AlipayCredentials(ALIPAY_APP_ID, getattr(app_keys, shape), alipay_keys.public_base64)
    client = AlipayClient(credentials, ALIPAY_GATEWAY)
    reference = AlipayClient(AlipayCredentials(ALIPAY_APP_ID, app_keys.private_pem, alipay_keys.public_pem))

    assert client._sign("a=1&b=2") == reference._sign("a=1&b=2")


def test_credentials_from_params_and_bad_keys(app_keys, alipay_keys):
    params = {
        "app_id": ALIPAY_APP_ID,
        "app_private_key": app_keys.private_base64,
        "alipay_public_key": alipay_keys.public_base64,
    }
    assert AlipayCredentials.from_params(params).seller_id is None
    assert "PRIVATE" not in repr(AlipayCredentials.from_params(params))
    with pytest.raises(KeyFormatError):
        AlipayCredentials.from_params({**params, "app_private_key": alipay_keys.public_base64})
    with pytest.raises(KeyFormatError):
        AlipayCredentials.from_params({**params, "alipay_public_key": "bm90IGEga2V5"})


def _public_pkcs1(keys: TestKeyPair, encoding: serialization.Encoding) -> bytes:
    return keys.public_key.public_bytes(encoding, serialization.PublicFormat.PKCS1)


def test_every_public_key_shape_verifies(app_keys, alipay_keys, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    shapes = [
        alipay_keys.public_pem,
        alipay_keys.public_base64,
        _public_pkcs1(alipay_keys, serialization.Encoding.PEM).decode(),
        base64.b64encode(_public_pkcs1(alipay_keys, serialization.Encoding.DER)).decode(),
        "\n".join(textwrap.wrap(alipay_keys.public_base64, 64)) + "\n",
    ]
    for shape in shapes:
        client = AlipayClient(
            AlipayCredentials(ALIPAY_APP_ID, app_keys.private_base64, shape), ALIPAY_GATEWAY
        )
        assert client.parse_notification(form).paid


def test_unusable_keys_are_refused_without_echoing_them(app_keys):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    encrypted = app_keys.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )

    for text, reason in [
        (small_pem, "RSA-1024"),
        (encrypted, "password"),
        (ec_pem, "not an RSA key"),
        (app_keys.public_pem, "expected a private key"),
        ("", "empty"),
        ("%%%", "neither PEM nor base64"),
    ]:
        with pytest.raises(KeyFormatError, match=reason) as caught:
            load_private_key(text)
        assert "MII" not in str(caught.value)
