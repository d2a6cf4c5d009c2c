"""Every ```bash example of docs/ runs as written against a fresh `make run`, and answers what its `# →` says.

The guides run one after the other (in name order) against one stack started in a copy of the working tree;
each guide is one bash process with `set -euo pipefail`, so a block's exports reach the next. Every answer
printed must be the success envelope, or the error code its promise starts with (`# → 400 {…}`); what a
promise names beyond that (statuses, error codes, counts) is checked by the entry of PROMISES that quotes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.docs_examples import (
    Guide,
    Step,
    envelopes,
    guides_with_examples,
    json_values,
    read_guide,
    run_guide,
)
from tests.deploy.local_stack import ROOT, LocalStack, copy_working_tree, reader_env, taken_port

pytestmark = pytest.mark.e2e

GUIDES = guides_with_examples(ROOT / "docs")
# Shorter than make run's defaults, so the waits the guides show end in seconds: receipts of the sandbox
# upstream are polled by the sweep, statistics rebuilt by beat.
FAST = {"SMS_SWEEP_INTERVAL_SECONDS": "2", "SMS_STATS_INTERVAL_SECONDS": "2", "GUNICORN_WORKERS": "1"}
STARTUP_SECONDS = 300  # run-local.sh gives each API two minutes to answer
GUIDE_SECONDS = 120

Check = Callable[[list[Any]], None]  # takes the JSON objects a step printed; asserts what its promise names


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


def counted_by_provider(values: list[Any]) -> None:
    figures = {"total": 2, "success": 2, "failed": 0, "pending": 0, "segments": 2}
    assert data(values) == {"list": [{"key": "sandbox", **figures}], "totals": figures}


# For each guide, a quote of each of its promises (enough to find it) and what it is checked for.
PROMISES: dict[str, dict[str, Check]] = {
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if (port := taken_port()) is not None:
        pytest.skip(f"port {port} is in use (a make run on this machine?); the docs examples need it free")
    tree = copy_working_tree(tmp_path_factory.mktemp("docs-examples"))
    settings = {name: value for guide in GUIDES for name, value in guide.stack_env.items()}
    local = LocalStack(tree, {**settings, **FAST})
    try:
        local.wait_ready(STARTUP_SECONDS)
        yield local
    finally:
        local.stop()


def checks_by_step(guide: Guide) -> dict[int, Check]:
    """Each promise of the guide matched to the one PROMISES entry that quotes it, and back."""
    entries = PROMISES.get(guide.name, {})
    promised = {index: step for index, step in enumerate(guide.steps) if step.promise is not None}
    matched: dict[int, Check] = {}
    for quote, check in entries.items():
        hits = [index for index, step in promised.items() if quote in step.promise]
        assert len(hits) == 1, f"PROMISES[{guide.name!r}][{quote!r}] quotes {len(hits)} promises of the guide"
        matched[hits[0]] = check
    unchecked = [step.promise for index, step in promised.items() if index not in matched]
    assert not unchecked, f"{guide.name}: promises PROMISES does not check: {unchecked}"
    return matched


def describe(guide: Guide, index: int, step: Step, output: str) -> str:
    return f"{guide.name}, block {step.block + 1}, step {index + 1}:\n{step.commands}\n--- printed:\n{output}"


@pytest.mark.parametrize("guide", GUIDES, ids=[guide.name for guide in GUIDES])
def test_examples_run_as_written(guide: Guide, stack):
    checks = checks_by_step(guide)
    run = run_guide(guide, stack.tree, reader_env(), GUIDE_SECONDS)
    if run.returncode != 0:
        index = len(run.outputs) - 1
        ended = "timed out" if run.returncode is None else f"exited {run.returncode}"
        pytest.fail(
            f"{ended} in {describe(guide, index, guide.steps[index], run.outputs[index])}"
            f"\n--- stderr:\n{run.stderr}{stack.logs()}"
        )
    assert len(run.outputs) == len(guide.steps)
    for index, (step, output) in enumerate(zip(guide.steps, run.outputs, strict=True)):
        where = describe(guide, index, step, output)
        codes = [answer["code"] for answer in envelopes(output)]
        if step.error_code is None:
            assert all(code == 0 for code in codes), where
        else:
            assert codes and codes[-1] == step.error_code and all(code == 0 for code in codes[:-1]), where
        if index in checks:
            values = json_values(output)
            assert values, f"printed no JSON: {where}"
            try:
                checks[index](values)
            except (AssertionError, KeyError, TypeError) as failure:
                raise AssertionError(f"{step.promise!r} does not hold: {where}") from failure


def test_stack_stops_when_terminated(stack):
    output = stack.stop()
    assert stack.process.returncode is not None
    assert "stopped" in output.splitlines()[-1], output


def test_a_guide_is_cut_at_its_promises(tmp_path):
    guide_path = tmp_path / "guide.md"
    guide_path.write_text(
        "Intro.\n\n```bash\nFOO_TOKEN=abc make run\n```\n\n```bash\nexport A=1\ncurl -s x\n"
        "# → 400 {…}: the first\n#   continued\ncurl -s y\n# → data: the second\nexport B=2\n```\n\n"
        "```json\n{}\n```\n"
    )
    guide = read_guide(guide_path)
    assert guide.stack_env == {"FOO_TOKEN": "abc"}
    assert [(s.commands, s.promise, s.error_code) for s in guide.steps] == [
        ("export A=1\ncurl -s x", "400 {…}: the first continued", 400),
        ("curl -s y", "data: the second", None),
        ("export B=2", None, None),
    ]
    assert json_values('{"code":0}{"code":400,"data":null}\n<<x>> {"a": [1]}') == [
        {"code": 0},
        {"code": 400, "data": None},
        {"a": [1]},
    ]
