"""Per-mode validation of config params: required fields, keys parsed at save time, exact ratios."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payment_service.configs.params import keep_stored_secrets, split_secrets, validate_params
from shared.envelope import BadRequestError
from tests.fakes.keys import key_pair
from tests.payment.conftest import SUB_MCH_ID, params_for

MODES = ["wechat_split", "wechat_direct", "alipay_direct"]


def rejected(mode, params) -> BadRequestError:
    with pytest.raises(BadRequestError) as caught:
        validate_params(mode, params)
    assert caught.value.code == 400
    return caught.value


def receivers(*items):
    return {"enabled": True, "type": "ratio", "receivers": list(items)}


def receiver(merchant_id, ratio, **extra):
    return {
        "receiver_type": "platform",
        "merchant_id": merchant_id,
        "ratio": ratio,
        "name": "某某有限公司",
        **extra,
    }


@pytest.mark.parametrize("mode", MODES)
def test_valid_params_of_each_mode_load(mode):
    loaded = validate_params(mode, params_for(mode))
    assert loaded["app_id"] == params_for(mode)["app_id"]


@pytest.mark.parametrize(
    ("mode", "field"),
    [
        ("wechat_split", "service_mch_id"),
        ("wechat_split", "sub_mch_id"),
        ("wechat_split", "app_id"),
        ("wechat_split", "api_key"),
        ("wechat_split", "merchant_serial_no"),
        ("wechat_split", "merchant_private_key"),
        ("wechat_split", "wechatpay_public_key_id"),
        ("wechat_split", "wechatpay_public_key"),
        ("wechat_direct", "mch_id"),
        ("wechat_direct", "merchant_private_key"),
        ("alipay_direct", "app_id"),
        ("alipay_direct", "app_private_key"),
        ("alipay_direct", "alipay_public_key"),
    ],
)
def test_a_missing_required_field_is_named(mode, field):
    params = params_for(mode)
    del params[field]
    error = rejected(mode, params)
    assert f"params.{field}" in error.message
    assert field in error.data["errors"]["params"]


@pytest.mark.parametrize(
    ("mode", "field", "value"),
    [
        (
            "wechat_split",
            "merchant_private_key",
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
        ),
        ("wechat_split", "merchant_private_key", key_pair("config-merchant").public_pem),
        ("wechat_split", "wechatpay_public_key", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
        ("wechat_direct", "wechatpay_public_key", "garbage!"),
        ("alipay_direct", "app_private_key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ"),
        ("alipay_direct", "alipay_public_key", key_pair("config-alipay-app").private_pem),
    ],
)
def test_a_malformed_key_is_a_400_naming_its_field(mode, field, value):
    error = rejected(mode, params_for(mode, **{field: value}))
    assert error.message.endswith(f"params.{field}")
    assert field in error.data["errors"]["params"]
    assert value not in str(error.data), "an error must not echo key material"


def test_alipay_accepts_bare_base64_and_pkcs1_keys():
    keys = key_pair("config-alipay-app")
    for private in (keys.private_base64, keys.private_pkcs1_pem, keys.private_pkcs1_base64, keys.private_pem):
        assert validate_params("alipay_direct", params_for("alipay_direct", app_private_key=private))


@pytest.mark.parametrize("api_key", ["short", "a" * 31, "a" * 33, "a" * 31 + "!", "***"])
def test_api_key_must_be_32_letters_or_digits(api_key):
    error = rejected("wechat_direct", params_for("wechat_direct", api_key=api_key))
    assert "api_key" in error.data["errors"]["params"]


def test_unknown_fields_are_refused_not_ignored():
    error = rejected("wechat_direct", params_for("wechat_direct", sub_mchid="typo"))
    assert "sub_mchid" in error.data["errors"]["params"]


@pytest.mark.parametrize("params", [None, [], "text", 3])
def test_params_must_be_an_object(params):
    assert "params" in rejected("alipay_direct", params).data["errors"]


def test_ratios_are_exact_decimals_that_may_add_up_to_exactly_one():
    sharing = receivers(receiver("1001", 0.34), receiver("1002", 0.56), receiver("1003", 0.1))
    loaded = validate_params("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    ratios = [item["ratio"] for item in loaded["profit_sharing"]["receivers"]]
    assert ratios == [Decimal("0.34"), Decimal("0.56"), Decimal("0.1")]
    assert sum(ratios) == Decimal(1)


def test_ratios_may_be_numeric_strings():
    sharing = receivers(receiver("1001", "0.1"), receiver(SUB_MCH_ID, "0.9", name=None))
    loaded = validate_params("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    assert [item["ratio"] for item in loaded["profit_sharing"]["receivers"]] == [
        Decimal("0.1"),
        Decimal("0.9"),
    ]


def test_a_sum_above_one_is_refused():
    sharing = receivers(receiver("1001", 0.34), receiver("1002", 0.56), receiver("1003", 0.11))
    error = rejected("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    assert "1.01" in str(error.data)


@pytest.mark.parametrize("ratio", [0, -0.1, 1.01, "abc", True, None, "NaN", "Infinity", "0.123456789"])
def test_a_ratio_outside_zero_to_one_or_not_a_number_is_refused(ratio):
    sharing = receivers(receiver("1001", ratio))
    error = rejected("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    assert "ratio" in str(error.data["errors"]["params"]["profit_sharing"]["receivers"][0])


def test_one_receiver_may_take_everything():
    sharing = receivers(receiver("1001", 1))
    assert validate_params("wechat_split", params_for("wechat_split", profit_sharing=sharing))


def test_a_duplicate_receiver_is_refused():
    sharing = receivers(receiver("1001", 0.1), receiver("1001", 0.2))
    error = rejected("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    assert "1001" in str(error.data)


def test_a_transferred_receiver_needs_its_merchant_name_but_the_own_share_does_not():
    sharing = receivers(receiver("1001", 0.1, name=None), receiver(SUB_MCH_ID, 0.9, name=None))
    error = rejected("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    by_index = error.data["errors"]["params"]["profit_sharing"]["receivers"]
    assert list(by_index) == [0] and "name" in by_index[0]
    assert "params.profit_sharing.receivers.0.name" in error.message


def test_relation_type_defaults_to_partner_and_custom_needs_a_relation():
    loaded = validate_params("wechat_split", params_for("wechat_split"))
    assert {item["relation_type"] for item in loaded["profit_sharing"]["receivers"]} == {"PARTNER"}
    sharing = receivers(receiver("1001", 0.1, relation_type="CUSTOM"))
    rejected("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    sharing = receivers(receiver("1001", 0.1, relation_type="CUSTOM", custom_relation="加盟总部"))
    assert validate_params("wechat_split", params_for("wechat_split", profit_sharing=sharing))
    rejected(
        "wechat_split",
        params_for("wechat_split", profit_sharing=receivers(receiver("1001", 0.1, relation_type="BOSS"))),
    )


def test_enabled_sharing_needs_a_receiver_and_disabled_sharing_may_be_left_out():
    rejected("wechat_split", params_for("wechat_split", profit_sharing=receivers()))
    params = params_for("wechat_split")
    del params["profit_sharing"]
    assert validate_params("wechat_split", params)["profit_sharing"] == {
        "enabled": False,
        "type": "ratio",
        "receivers": [],
    }


def test_only_ratio_sharing_is_supported():
    sharing = {**receivers(receiver("1001", 0.1)), "type": "amount"}
    rejected("wechat_split", params_for("wechat_split", profit_sharing=sharing))


def test_secrets_are_split_from_what_may_be_shown():
    shown, secret = split_secrets("wechat_split", validate_params("wechat_split", params_for("wechat_split")))
    assert set(secret) == {"api_key", "merchant_private_key"}
    assert not set(secret) & set(shown)
    shown, secret = split_secrets(
        "alipay_direct", validate_params("alipay_direct", params_for("alipay_direct"))
    )
    assert set(secret) == {"app_private_key"} and "alipay_public_key" in shown


def test_a_secret_left_out_null_or_masked_keeps_its_stored_value():
    stored = {"api_key": "stored-api-key", "merchant_private_key": "stored-pem"}
    merged = keep_stored_secrets("wechat_direct", {"api_key": "***", "merchant_private_key": None}, stored)
    assert merged == stored
    assert keep_stored_secrets("wechat_direct", {}, stored) == stored
    assert keep_stored_secrets("wechat_direct", {"api_key": "new"}, stored)["api_key"] == "new"
