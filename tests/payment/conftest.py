"""Payment test data: valid params of each mode (throwaway keys), API helpers and a committed-data app."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.auth import Principal, hash_api_key
from tests.conftest import POSTGRES_URL, app_with_own_database
from tests.factories import create_payment_tenant
from tests.fakes.keys import fake_api_v3_key, key_pair

CONFIGS_URL = "/api/v1/payment/configs"
SUB_MCH_ID = "1900000110"
API_V3_KEY = fake_api_v3_key()
OTHER_API_V3_KEY = fake_api_v3_key()

_WECHAT_SPLIT = {
    "service_mch_id": "1900000109",
    "sub_mch_id": SUB_MCH_ID,
    "app_id": "wx8888888888888888",
    "api_key": API_V3_KEY,
    "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "wechatpay_public_key_id": "PUB_KEY_ID_0119000001092024101000000000",
    "profit_sharing": {
        "enabled": True,
        "type": "ratio",
        "receivers": [
            {
                "receiver_type": "platform",
                "merchant_id": "1001",
                "ratio": 0.15,
                "name": "华北洗衣平台有限公司",
            },
            {"receiver_type": "franchisee", "merchant_id": SUB_MCH_ID, "ratio": 0.85},
        ],
    },
}
_WECHAT_DIRECT = {
    "mch_id": "1900000200",
    "app_id": "wx7777777777777777",
    "api_key": API_V3_KEY,
    "merchant_serial_no": "6157F09EFDC096DE15EBE81A47057A7232F1B8E2",
    "wechatpay_public_key_id": "PUB_KEY_ID_0119000002002024101000000000",
}
_ALIPAY_DIRECT = {"app_id": "2021000117650001", "seller_id": "2088101117955611"}


def merchant_keys():
    return key_pair("config-merchant")


def alipay_app_keys():
    return key_pair("config-alipay-app")


def params_for(mode: str, **overrides: Any) -> dict[str, Any]:
    """Valid params of ``mode`` with fresh-per-process keys; ``overrides`` replace top-level fields."""
    if mode == "wechat_split":
        params = copy.deepcopy(_WECHAT_SPLIT)
    elif mode == "wechat_direct":
        params = copy.deepcopy(_WECHAT_DIRECT)
    else:
        params = copy.deepcopy(_ALIPAY_DIRECT)
    if mode.startswith("wechat"):
        params["merchant_private_key"] = merchant_keys().private_pem
        params["wechatpay_public_key"] = key_pair("wechatpay-platform").public_pem
    else:
        params["app_private_key"] = alipay_app_keys().private_base64
        params["alipay_public_key"] = key_pair("alipay-platform").public_base64
    params.update(overrides)
    return params


def secret_fragments() -> list[str]:
    """Substrings that must never leave the service or reach the database in clear."""
    fragments = [API_V3_KEY, OTHER_API_V3_KEY]
    for keys in (merchant_keys(), alipay_app_keys()):
        fragments.extend(line for line in keys.private_pem.splitlines() if not line.startswith("-----"))
        fragments.append(keys.private_base64[:64])
    return fragments


def assert_no_secret(text: str) -> None:
    leaked = [fragment[:12] + "…" for fragment in secret_fragments() if fragment in text]
    assert not leaked, f"secret material in clear: {leaked}"


def headers_of(api_key: str) -> dict[str, str]:
    return {"X-Api-Key": api_key}


def create_config(client, api_key: str, mode: str = "wechat_split", name: str | None = None, **overrides):
    """POST a valid config of ``mode``; returns the response's ``data``."""
    body = {"name": name or f"华北区-{mode}", "mode": mode, "params": params_for(mode, **overrides)}
    response = client.post(CONFIGS_URL, json=body, headers=headers_of(api_key))
    assert response.status_code == 200, response.get_json()
    assert_no_secret(response.get_data(as_text=True))
    return response.get_json()["data"]


def bind(client, api_key: str, site_id: str, config_id: str):
    return client.post(
        f"/api/v1/sites/{site_id}/payment-binding", json={"config_id": config_id}, headers=headers_of(api_key)
    )


def principal_of(api_key: str) -> Principal:
    from payment_service.extensions import keys

    principal = keys.lookup(hash_api_key(api_key))
    assert principal is not None
    return principal


def as_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@pytest.fixture
def admin(payment_tenant) -> str:
    """The API key of a tenant holding every payment scope."""
    return payment_tenant[1]


@pytest.fixture
def other_admin(payment_db) -> str:
    """The key of a second tenant, to prove the first one's data is invisible to it."""
    return create_payment_tenant(payment_db, name="另一个租户")[1]


@pytest.fixture
def actor(admin) -> Principal:
    return principal_of(admin)


@pytest.fixture
def committed_app(payment_app, databases) -> Iterator:
    """A payment app on its own database where commits are real: for tests with concurrent threads.

    ``payment_service.extensions.db`` is process-wide, so building a second app rebinds it; it is bound
    back to the session's test database afterwards.
    """
    if not POSTGRES_URL:
        pytest.skip("row locks and concurrent transactions need PostgreSQL")
    from payment_service import create_app
    from payment_service.extensions import celery, db

    with app_with_own_database(create_app, db, celery, databases.create("payment_race")) as app:
        yield app
