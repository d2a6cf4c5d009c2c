"""No secret reaches the database in clear; the rotate command re-seals everything under the new key."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from sqlalchemy import select, text

from payment_service.configs.center import get_config, load_credentials
from payment_service.configs.secret_box import EXTENSION, SecretBox
from payment_service.models import PaymentConfig
from payment_service.settings import generate_secret_key
from tests.fakes.keys import key_pair
from tests.payment.conftest import (
    API_V3_KEY,
    CONFIGS_URL,
    OTHER_API_V3_KEY,
    assert_no_secret,
    bind,
    create_config,
    headers_of,
    params_for,
)

TABLES = ("payment_configs", "config_history", "site_bindings")


def raw_database_text(session) -> str:
    """Every row of the payment tables, as the database returns it, in one string."""
    dumped = []
    for table in TABLES:
        for row in session.execute(text(f"SELECT * FROM {table}")):
            dumped.append(json.dumps([str(value) for value in row], ensure_ascii=False))
    return "\n".join(dumped)


def test_the_database_holds_no_secret_in_clear(payment_client, payment_db, admin):
    sent = [params_for(mode) for mode in ("wechat_split", "wechat_direct", "alipay_direct")]
    with pytest.raises(AssertionError):
        assert_no_secret(json.dumps(sent))  # the check does recognise these secrets

    ids = [
        create_config(payment_client, admin, mode)["config_id"]
        for mode in ("wechat_split", "wechat_direct", "alipay_direct")
    ]
    rotated = params_for("wechat_direct", api_key=OTHER_API_V3_KEY)
    payment_client.put(f"{CONFIGS_URL}/{ids[1]}", json={"params": rotated}, headers=headers_of(admin))
    bind(payment_client, admin, "S1", ids[0])
    payment_client.delete(f"{CONFIGS_URL}/{ids[2]}", headers=headers_of(admin))

    stored = raw_database_text(payment_db)
    assert ids[0] in stored and "1900000110" in stored  # the rows are there, in a readable form
    assert_no_secret(stored)
    assert API_V3_KEY not in stored and "PRIVATE KEY" not in stored


def test_rotate_reseals_under_the_current_key_and_the_old_key_can_go(
    payment_app, payment_client, payment_db, admin, monkeypatch
):
    from tests.payment.conftest import principal_of

    config_id = create_config(payment_client, admin, "wechat_split")["config_id"]
    old_box = payment_app.extensions[EXTENSION]
    new_key = base64.b64decode(generate_secret_key())
    rotated_box = SecretBox(new_key, [base64.b64decode(payment_app.config["SECRET_KEY"])])
    monkeypatch.setitem(payment_app.extensions, EXTENSION, rotated_box)
    tenant_id = principal_of(admin).tenant_id
    before = payment_db.scalar(select(PaymentConfig.secrets_sealed).where(PaymentConfig.id == config_id))

    result = payment_app.test_cli_runner().invoke(args=["secret-key", "rotate"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["key_id"] == rotated_box.current_key_id
    assert report["resealed"] >= 1 and report["unreadable"] == []

    config = get_config(payment_db, tenant_id, config_id)
    assert config.secret_key_id == rotated_box.current_key_id and config.secrets_sealed != before
    new_only = SecretBox(new_key)
    assert load_credentials(config, new_only)["api_key"] == API_V3_KEY
    assert (
        load_credentials(config, new_only)["merchant_private_key"] == key_pair("config-merchant").private_pem
    )
    again = payment_app.test_cli_runner().invoke(args=["secret-key", "rotate"])
    assert json.loads(again.output)["resealed"] == 0
    assert old_box.current_key_id != rotated_box.current_key_id


def test_rotate_reports_configs_whose_key_is_gone_and_fails(payment_app, payment_client, admin, monkeypatch):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    monkeypatch.setitem(payment_app.extensions, EXTENSION, SecretBox(base64.b64decode(generate_secret_key())))
    result = payment_app.test_cli_runner().invoke(args=["secret-key", "rotate"])
    assert result.exit_code != 0
    assert config_id in result.output and "not configured" in result.output


def test_a_config_under_an_unconfigured_key_answers_503_not_500(
    payment_app, payment_client, admin, monkeypatch
):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    monkeypatch.setitem(payment_app.extensions, EXTENSION, SecretBox(base64.b64decode(generate_secret_key())))
    shown = payment_client.get(f"{CONFIGS_URL}/{config_id}", headers=headers_of(admin))
    assert shown.status_code == 200  # showing needs no secret
    response = payment_client.put(f"{CONFIGS_URL}/{config_id}", json={"name": "x"}, headers=headers_of(admin))
    assert response.status_code == 503
    assert "PAYMENT_OLD_SECRET_KEYS" in response.get_json()["message"]
    assert_no_secret(response.get_data(as_text=True))


def test_no_secret_reaches_the_logs(payment_client, admin, caplog):
    caplog.set_level(logging.DEBUG)
    config_id = create_config(payment_client, admin, "wechat_split")["config_id"]
    bad = params_for("wechat_split", merchant_private_key=key_pair("config-merchant").private_pem[:200])
    payment_client.put(f"{CONFIGS_URL}/{config_id}", json={"params": bad}, headers=headers_of(admin))
    payment_client.put(
        f"{CONFIGS_URL}/{config_id}", json={"params": params_for("wechat_split")}, headers=headers_of(admin)
    )
    bind(payment_client, admin, "S1", config_id)
    assert_no_secret(caplog.text + "".join(str(record.args) for record in caplog.records))
