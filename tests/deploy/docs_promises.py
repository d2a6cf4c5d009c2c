"""What each guide's `# →` promises, quoted, and the check of what the step printed (PROMISES).

Every answer is checked for its envelope code by the test itself; an entry checks what its promise names
beyond that (statuses, error codes, counts). A quote must find exactly one promise of its guide, or,
wrapped in ``Each``, every promise it finds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[list[Any]], None]  # takes the JSON objects a step printed; asserts what its promise names


class Each:
    """A check for every promise its quote finds (the same promise made in several places of a guide)."""

    def __init__(self, check: Check) -> None:
        self.check = check

    def __call__(self, values: list[Any]) -> None:
        self.check(values)


def data(values: list[Any]) -> Any:
    return values[-1]["data"]


def envelope_only(values: list[Any]) -> None:
    """The promise names nothing beyond the envelope's code, which every step is checked for."""


def accepted_for(count: int) -> Check:
    def check(values: list[Any]) -> None:
        answer = data(values)
        assert answer["status"] == "queued"
        assert len(answer["message_ids"]) == count and answer["message_id"] == answer["message_ids"][0]

    return check


def field_errors(name: str, *messages: str) -> Check:
    def check(values: list[Any]) -> None:
        assert data(values)["errors"] == {name: list(messages)}

    return check


def has(**expected: Any) -> Check:
    """The last answer's data holds these values."""

    def check(values: list[Any]) -> None:
        answer = data(values)
        assert {key: answer.get(key) for key in expected} == expected

    return check


def answered(expected: dict[str, Any]) -> Check:
    """The last object printed is exactly this (an upstream's own answer shape, not the envelope)."""

    def check(values: list[Any]) -> None:
        assert values[-1] == expected

    return check


def page_of(total: int, **first: Any) -> Check:
    def check(values: list[Any]) -> None:
        answer = data(values)
        assert answer["total"] == total and len(answer["list"]) == total
        assert {key: answer["list"][0].get(key) for key in first} == first

    return check


def issued_test_key(values: list[Any]) -> None:
    key = values[-1]
    assert (
        key["test"] is True and key["api_key"].startswith("sk_test_") and key["tenant_id"].startswith("TNT_")
    )


def simulated_outcomes(values: list[Any]) -> None:
    records = data(values)["list"]
    assert len(records) == 3
    assert all(r["test"] is True and r["provider"] == "test" for r in records)
    by_status = {r["status"]: r for r in records}
    assert sorted(by_status) == ["failed", "submitted", "success"]
    assert by_status["failed"]["error_code"] == "SIMULATED_FAILURE"


def opt_outs_masked(values: list[Any]) -> None:
    answer = data(values)
    assert answer["total"] >= 1 and {"list", "page", "size"} <= answer.keys()
    assert "138****8000" in [entry["mobile"] for entry in answer["list"]]
    assert all("****" in entry["mobile"] for entry in answer["list"])


def providers_named(values: list[Any]) -> None:
    assert {record["provider"] for record in data(values)["list"]} <= {"aliyun", "tencent", "sandbox", None}


def prints_nothing(values: list[Any]) -> None:
    """The step writes a file and prints nothing (checked by the step that reads the file)."""
    assert values == []


def enabled_templates(values: list[Any]) -> None:
    answer = data(values)
    assert answer["total"] >= 1 and (answer["page"], answer["size"]) == (1, 20)
    assert all(template["status"] == "enabled" for template in answer["list"])


def batch_delivered(values: list[Any]) -> None:
    answer = data(values)
    assert answer["total"] == 2 and answer["counts"]["success"] == 2 and len(answer["list"]) == 2
    assert {item["status"] for item in answer["list"]} == {"success"}


def sites_set_up(site: str) -> Check:
    def check(values: list[Any]) -> None:
        answer = values[-1]
        assert answer["site_id"] == site
        assert answer["wechat_config_id"].startswith("CFG_") and answer["alipay_config_id"].startswith("CFG_")

    return check


def fake_answered(status: int, body: str) -> Check:
    """What the fake reports the service answered to the notification it posted."""

    def check(values: list[Any]) -> None:
        answer = values[-1]
        assert (answer["status"], answer["body"], answer["out_trade_no"][:4]) == (status, body, "TXN_")

    return check


def counted_by_provider(values: list[Any]) -> None:
    figures = {"total": 2, "success": 2, "failed": 0, "pending": 0, "segments": 2}
    assert data(values) == {"list": [{"key": "sandbox", **figures}], "totals": figures}


# For each guide, a quote of each of its promises (enough to find it) and what it is checked for.
PROMISES: dict[str, dict[str, Check]] = {
    "README.md": {
        '"message_ids":["MSG_…"],"status":"queued"': accepted_for(1),
        '"mobile":"135****5000","status":"success"': page_of(
            1, mobile="135****5000", status="success", provider="sandbox"
        ),
        '"status":"paid","amount":20.0': has(status="paid", amount=20.0),
    },
    "payment.md": {
        '"site_id": "SITE_002"': sites_set_up("SITE_002"),
        '"status":"paid"': has(status="paid", amount=20.0),
    },
    "payment-sandbox.md": {
        '"site_id": "SITE_001"': sites_set_up("SITE_001"),
        '"mode": "wechat_direct", "params"': prints_nothing,
        '"name":"沙箱-微信直连商户","mode":"wechat_direct"': has(mode="wechat_direct", status="enabled"),
        '"mode":"wechat_direct",…},"message"': has(channel="wechat", mode="wechat_direct"),
        '"mode":"wechat_direct",…,"status":"paid"': has(mode="wechat_direct", status="paid"),
        '"mode": "wechat_split", "params"': prints_nothing,
        '"name":"沙箱-微信服务商分账","mode":"wechat_split"': has(mode="wechat_split", status="enabled"),
        '"mode":"wechat_split",…},"message"': has(channel="wechat", mode="wechat_split"),
        '"mode":"wechat_split",…,"status":"paid"': has(mode="wechat_split", status="paid"),
        '"mode": "alipay_direct", "params"': prints_nothing,
        '"name":"沙箱-支付宝直连","mode":"alipay_direct"': has(mode="alipay_direct", status="enabled"),
        '"mode":"alipay_direct",…},"message"': has(channel="alipay", mode="alipay_direct"),
        '"mode":"alipay_direct",…,"status":"paid"': has(mode="alipay_direct", status="paid"),
        '"pay_params":{"appId":"wx0000000000sandbox"': Each(has(channel="wechat", status="pending")),
        '"status": 204, "body": ""': Each(fake_answered(204, "")),
        '"pay_params":{"tradeNO"': has(channel="alipay", status="pending"),
        '"status": 200, "body": "success"': fake_answered(200, "success"),
    },
    "refunds.md": {
        '"amount":20.0,"status":"pending"': has(channel="wechat", amount=20.0, status="pending"),
        'status: "paid", amount: 20.0, refunded_amount: 0.0': has(
            status="paid", amount=20.0, refunded_amount=0.0
        ),
        'status: "processing", amount: 5.0': has(status="processing", amount=5.0),
        'list: [{refund_id: "RFD_…", status: "processing"': page_of(1, status="processing", amount=5.0),
        'status: "closed"': has(status="closed"),
        "a paid order is refunded instead": envelope_only,
        'status: "success", amount: 5.0': has(status="success", amount=5.0),
        "refunded_amount: 5.0, refunding_amount: 0.0": has(
            status="paid", refunded_amount=5.0, refunding_amount=0.0
        ),
    },
    "sms-marketing.md": {
        '"category":"marketing"': has(category="marketing"),
        "须以 回T退订": field_errors("content", "须以 回T退订、回TD退订、回N退订、拒收请回复R 之一结尾"),
        '"source":"api","reason":"客户来电要求"': has(
            mobile="138****8000", source="api", reason="客户来电要求"
        ),
        "mobiles masked": opt_outs_masked,
        '"message_ids":["MSG_…","MSG_…"]': accepted_for(2),
        'error_code: "OPTED_OUT", provider: null': has(
            mobile="138****8000", status="failed", error_code="OPTED_OUT", provider=None
        ),
        '"deleted":true': has(mobile="138****8000", deleted=True),
    },
    "sms-replies-and-routing.md": {
        '{"code":0,"msg":"成功"}': answered({"code": 0, "msg": "成功"}),
        '{"result":0,"errmsg":"OK"}': answered({"result": 0, "errmsg": "OK"}),
        "total: 2, page: 1, size: 20": page_of(
            2, mobile="139****9000", text="好的", sign_name="洗衣云", provider="tencent"
        ),
        'source: "aliyun", reason: "回复「TD」"': page_of(
            1, mobile="138****8000", source="aliyun", reason="回复「TD」"
        ),
        'data.list[].provider: "aliyun" | "tencent" | "sandbox"': providers_named,
    },
    "sms.md": {
        '"tenant_name":"本地演示租户"': has(tenant_name="本地演示租户", scopes=["sms:admin", "sms:send"]),
        '"name":"取衣提醒","variables"': has(
            name="取衣提醒", variables=["code", "minutes"], category="notification", status="enabled"
        ),
        '"status":"enabled",…},…],"total":…': enabled_templates,
        '"message_ids":["MSG_…","MSG_…"],"status":"queued"': accepted_for(2),
        '"batch_id":"BATCH_…","total":2,"status":"queued"': has(total=2, status="queued"),
        '"mobile":"137****7001","status":"success"': has(
            mobile="137****7001", status="success", provider="sandbox", segments=1
        ),
        '"counts":{…,"success":2,…}': batch_delivered,
        '"mobile":"137****7003","status":"success"': page_of(1, mobile="137****7003", status="success"),
        '"message_ids":["MSG_…"],"status":"queued"': accepted_for(1),
        '"limit":"daily_quota"': has(limit="daily_quota"),
    },
    "sms-stats.md": {
        '"message_ids":["MSG_…","MSG_…"]': accepted_for(2),
        '"key":"sandbox","total":2': counted_by_provider,
        "to 不能早于 from": field_errors("to", "to 不能早于 from"),
    },
    "sms-test-keys.md": {
        '"api_key": "sk_test_…"': issued_test_key,
        '"message_ids":["MSG_…","MSG_…","MSG_…"]': accepted_for(3),
        "three records": simulated_outcomes,
        "the live key does not see test messages": page_of(0),
    },
}
