"""Weighted routing: the first provider of each upstream call is drawn by SMS_PROVIDER_WEIGHTS."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from shared.settings import ConfigurationError
from sms_service.delivery.routing import failover_order
from sms_service.settings import load_config, provider_weights


@dataclass(frozen=True)
class Provider:
    name: str


ALIYUN, TENCENT, SANDBOX = Provider("aliyun"), Provider("tencent"), Provider("sandbox")


def test_without_weights_the_configured_order():
    assert failover_order([TENCENT, ALIYUN], None) == [TENCENT, ALIYUN]


def test_the_first_provider_is_drawn_by_weight_and_the_rest_follow():
    rng = random.Random(7)
    firsts = Counter(
        failover_order([ALIYUN, TENCENT], {"aliyun": 70, "tencent": 30}, rng)[0].name for _ in range(10_000)
    )
    assert abs(firsts["aliyun"] / 10_000 - 0.70) < 0.02
    assert all(
        sorted(p.name for p in failover_order([ALIYUN, TENCENT], {"aliyun": 1, "tencent": 1}))
        == ["aliyun", "tencent"]
        for _ in range(20)
    )


def test_among_the_providers_that_can_take_the_call_the_draw_keeps_the_weights():
    """Dispatch skips a provider with an open circuit or no template code: the first one left is still
    drawn by weight among the others."""
    rng = random.Random(11)
    weights = {"aliyun": 50, "tencent": 30, "sandbox": 20}
    firsts = Counter()
    for _ in range(10_000):
        order = [p for p in failover_order([ALIYUN, TENCENT, SANDBOX], weights, rng) if p is not ALIYUN]
        firsts[order[0].name] += 1
    assert abs(firsts["tencent"] / 10_000 - 0.60) < 0.02


def test_a_provider_weighing_zero_is_only_a_failover_target():
    weights = provider_weights("aliyun:100", ["aliyun", "tencent"])
    assert weights == {"aliyun": 100, "tencent": 0}
    assert failover_order([TENCENT, ALIYUN], weights) == [ALIYUN, TENCENT]


@pytest.mark.parametrize(
    "raw", ["aliyun", "aliyun:x", "aliyun:-1", "huawei:10", "aliyun:1,aliyun:2", "aliyun:0,tencent:0"]
)
def test_invalid_weights_are_refused_at_start_naming_the_variable(raw):
    with pytest.raises(ConfigurationError, match="SMS_PROVIDER_WEIGHTS"):
        load_config({"PROVIDERS": "aliyun,tencent", "PROVIDER_WEIGHTS": raw})
