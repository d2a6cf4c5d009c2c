"""Every ```bash example of docs/ runs as written against a fresh `make run`, and answers what its `# →` says.

The guides run one after the other (in name order) against one stack started in a copy of the working tree;
each guide is one bash process with `set -euo pipefail`, so a block's exports reach the next. Every answer
printed must be the success envelope, or the error code its promise starts with (`# → 400 {…}`); what a
promise names beyond that (statuses, error codes, counts) is checked by the entry of PROMISES that quotes it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from standardwebhooks import Webhook

from tests.deploy.docs_examples import (
    Guide,
    Step,
    envelopes,
    guides_with_examples,
    json_values,
    read_guide,
    run_guide,
)
from tests.deploy.docs_promises import PROMISES, Check, Each, prints_nothing
from tests.deploy.local_stack import ROOT, LocalStack, copy_working_tree, reader_env, taken_port
from tests.fakes.server import serve_in_thread
from tests.reliability.stacks import wait_for
from tests.sms.conftest import CallbackReceiver

pytestmark = pytest.mark.e2e

# The README's quickstart first, as a reader runs it right after `make run`; then the guides by name.
GUIDES = [read_guide(ROOT / "README.md"), *guides_with_examples(ROOT / "docs")]
# Shorter than make run's defaults, so the waits the guides show end in seconds: receipts of the sandbox
# upstream are polled by the sweep, statistics rebuilt by beat.
FAST = {"SMS_SWEEP_INTERVAL_SECONDS": "2", "SMS_STATS_INTERVAL_SECONDS": "2", "GUNICORN_WORKERS": "1"}
STARTUP_SECONDS = 300  # run-local.sh gives each API two minutes to answer
GUIDE_SECONDS = 120


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if (port := taken_port()) is not None:
        reason = f"port {port} is in use (a make run on this machine?); the docs examples need it free"
        if os.environ.get("TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
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
        expected = "at least one" if isinstance(check, Each) else "exactly one"
        assert hits and (len(hits) == 1 or isinstance(check, Each)), (
            f"PROMISES[{guide.name!r}][{quote!r}] quotes {len(hits)} promises of the guide, not {expected}"
        )
        matched.update(dict.fromkeys(hits, check))
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
            assert values or checks[index] is prints_nothing, f"printed no JSON: {where}"
            try:
                checks[index](values)
            except (AssertionError, KeyError, TypeError) as failure:
                raise AssertionError(f"{step.promise!r} does not hold: {where}") from failure


@contextmanager
def receiver_on_this_machine() -> Iterator[CallbackReceiver]:
    """A tenant's or a business's endpoint on 127.0.0.1 that keeps what was POSTed."""
    receiver = CallbackReceiver()
    url, stop = serve_in_thread(receiver)
    receiver.url = url + "hook"
    try:
        yield receiver
    finally:
        stop()


def first_delivery(receiver: CallbackReceiver) -> tuple[bytes, dict[str, str]]:
    wait_for(lambda: receiver.requests, 60, "a delivery to the receiver on 127.0.0.1")
    headers, body = receiver.requests[0]
    return body, headers


def first_tenant(stack, service: str) -> dict:
    return json.loads((stack.tree / "var" / f"{service}-first-tenant.json").read_text())


def test_callbacks_and_forwards_reach_a_receiver_on_this_machine(stack):
    """Under make run a tenant's receiver on 127.0.0.1 gets its signed result (production refuses it)."""
    sms, payment = first_tenant(stack, "sms_service"), first_tenant(stack, "payment_service")
    headers = {"X-Api-Key": sms["api_key"]}
    with receiver_on_this_machine() as receiver:
        template = requests.post(
            "http://127.0.0.1:8001/api/v1/sms/templates",
            json={"name": "回调", "content": "取衣码${code}", "sign_name": "洗衣云"},
            headers=headers,
            timeout=10,
        ).json()["data"]["template_id"]
        sent = requests.post(
            "http://127.0.0.1:8001/api/v1/sms/send",
            json={
                "template_id": template,
                "mobiles": ["13300133000"],
                "variables": {"code": "1"},
                "callback_url": receiver.url,
            },
            headers=headers,
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        callback = Webhook(sms["callback_secret"]).verify(*first_delivery(receiver))
        assert callback["event"] == "sms.result" and callback["data"]["status"] == "success"

    with receiver_on_this_machine() as receiver:
        order = requests.post(
            "http://127.0.0.1:8002/api/v1/payment/order",
            json={
                "site_id": "SITE_001",
                "channel": "wechat",
                "amount": 1.00,
                "description": "回调",
                "payer_id": "o-sandbox",
                "notify_url": receiver.url,
            },
            headers={"X-Api-Key": payment["api_key"]},
            timeout=30,
        )
        assert order.status_code == 200, order.text
        transaction_id = order.json()["data"]["transaction_id"]
        subprocess.run(
            [".venv/bin/flask", "--app", "payment_service", "sandbox", "pay", transaction_id],
            cwd=stack.tree,
            env={
                **reader_env(),
                "PAYMENT_WECHATPAY_BASE_URL": "http://127.0.0.1:8601",
                "PAYMENT_ALIPAY_GATEWAY_URL": "http://127.0.0.1:8602/gateway.do",
            },
            check=True,
            capture_output=True,
            timeout=60,
        )
        forward = Webhook(payment["notify_secret"]).verify(*first_delivery(receiver))
        assert forward["event"] == "payment.result"
        assert forward["data"]["transaction_id"] == transaction_id and forward["data"]["status"] == "paid"


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
