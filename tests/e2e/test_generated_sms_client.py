"""The SMS service driven only through a client generated from openapi/sms.json, against gunicorn, a celery
worker, PostgreSQL, RabbitMQ and the Aliyun fake: every answer parses into its documented model whole,
queued and submitted records included (their times and upstream ids are still null)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.generated_clients import assert_nothing_lost, generate_client
from tests.e2e.processes import ROOT, run_cli, running, service_env, start_gunicorn, start_worker, wait_until
from tests.fakes import aliyun_sms
from tests.fakes.server import serve_in_thread
from tests.sms.conftest import CallbackReceiver

pytestmark = pytest.mark.e2e

TOKEN = "generated-client-receipt-token"
DOCUMENT = json.loads((ROOT / "openapi" / "sms.json").read_text())


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    return generate_client("sms.json", "sms_client", tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("sms-generated")
    aliyun, receiver = aliyun_sms.FakeAliyunSms(), CallbackReceiver()
    aliyun_url, stop_aliyun = serve_in_thread(aliyun)
    receiver_url, stop_receiver = serve_in_thread(receiver)
    env = service_env(
        "SMS",
        ENV="production",
        DATABASE_URL=databases.create("sms_generated_client"),
        BROKER_URL=broker_url,
        PROVIDERS="aliyun",
        **aliyun_sms.service_settings(aliyun_url),
        RECEIPT_TOKEN=TOKEN,
        CALLBACK_ALLOW_PRIVATE="true",
        SWEEP_INTERVAL_SECONDS=1,
    )
    run_cli("sms_service", env, "db", "upgrade")
    api, base_url = start_gunicorn("sms_service:create_app()", env, log_dir)
    with running(api):
        yield {"base_url": base_url, "env": env, "aliyun": aliyun, "log_dir": log_dir,
               "callback_url": receiver_url + "sms/callback"}  # fmt: skip
        assert "Traceback" not in api.log(), api.log()[-3000:]
    stop_aliyun()
    stop_receiver()


def client_for(sms, stack, api_key: str):
    return sms.AuthenticatedClient(
        base_url=stack["base_url"], token=api_key, prefix="", auth_header_name="X-Api-Key", timeout=10
    )


def parsed(response, model):
    """The generated client's reading of an answer, checked whole against the raw JSON."""
    assert isinstance(response.parsed, model), (response.status_code, response.content[:400])
    assert_nothing_lost(json.loads(response.content), response.parsed)
    return response.parsed


def linked_value(operation_id: str, link: str, answer) -> str:
    """The value the document's OpenAPI link ``link`` of ``operation_id`` takes from the answer."""
    for path_item in DOCUMENT["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                [(_, expression)] = operation["responses"]["200"]["links"][link]["parameters"].items()
                value = answer.to_dict()
                for part in expression.removeprefix("$response.body#/").split("/"):
                    value = value[part]
                return value
    raise AssertionError(f"no operation {operation_id}")


def test_templates_sends_records_and_batches_through_the_generated_client(sms, stack):
    from sms_client import models
    from sms_client.api.me import get_me
    from sms_client.api.sms_batches import get_batch
    from sms_client.api.sms_receipts import aliyun_receipts
    from sms_client.api.sms_records import get_record, search_records
    from sms_client.api.sms_send import batch_send, send
    from sms_client.api.sms_templates import (
        create_template,
        delete_template,
        get_template,
        list_templates,
        update_template,
    )

    tenant = json.loads(run_cli("sms_service", stack["env"], "tenant", "create", "--name", "generated"))
    client = client_for(sms, stack, tenant["api_key"])
    me = parsed(get_me.sync_detailed(client=client), models.MeEnvelope)
    assert me.data.tenant_id == tenant["tenant_id"]

    created = parsed(
        create_template.sync_detailed(
            client=client,
            body=models.TemplateCreate(
                name="取衣通知",
                content="您的衣物已洗好, 取衣码${code}",
                sign_name="洗衣云",
                provider_codes=models.ProviderCodes(aliyun="SMS_100"),
            ),
        ),
        models.TemplateEnvelope,
    )
    template_id = linked_value("create_template", "GetTemplate", created)
    assert template_id == created.data.template_id and created.data.variables == ["code"]
    got = parsed(get_template.sync_detailed(template_id, client=client), models.TemplateEnvelope)
    assert got.data.provider_codes.aliyun == "SMS_100"
    updated = parsed(
        update_template.sync_detailed(template_id, client=client, body=models.TemplateUpdate(name="取衣")),
        models.TemplateEnvelope,
    )
    assert updated.data.name == "取衣"
    listed = parsed(
        list_templates.sync_detailed(client=client, status=models.ListTemplatesStatus.ENABLED),
        models.TemplatePageEnvelope,
    )
    assert [t.template_id for t in listed.data.list_] == [template_id]

    # Queued messages (no worker yet): times and upstream ids are null, and the records still parse.
    sent = parsed(
        send.sync_detailed(
            client=client,
            body=models.SendArgs(
                template_id=template_id,
                mobiles=["13800138000", "+8613900139000"],
                variables=models.SendArgsVariables.from_dict({"code": "8821"}),
                callback_url=stack["callback_url"],
            ),
        ),
        models.SendResultEnvelope,
    )
    message_id = linked_value("send", "GetRecord", sent)
    assert message_id == sent.data.message_ids[0] and sent.data.status == models.SendResultStatus.QUEUED
    queued = parsed(get_record.sync_detailed(message_id, client=client), models.RecordDetailEnvelope)
    assert queued.data.status == models.RecordDetailStatus.QUEUED
    assert queued.data.sent_at is None and queued.data.channel_response.biz_id is None
    assert isinstance(queued.data.callback, models.CallbackDetail) and queued.data.callback.attempts == []
    page = parsed(search_records.sync_detailed(client=client), models.RecordPageEnvelope)
    assert {r.message_id for r in page.data.list_} == set(sent.data.message_ids)

    batch = parsed(
        batch_send.sync_detailed(
            client=client,
            body=models.BatchSendArgs(
                template_id=template_id,
                items=[
                    models.BatchItem(
                        mobile=mobile, variables=models.BatchItemVariables.from_dict({"code": str(n)})
                    )
                    for n, mobile in enumerate(["13700137000", "13600136000", "13500135000"])
                ],
            ),
        ),
        models.BatchAcceptedEnvelope,
    )
    batch_id = linked_value("batch_send", "GetBatch", batch)
    progress = parsed(get_batch.sync_detailed(batch_id, client=client, size=2), models.BatchEnvelope)
    assert progress.data.total == 3 and len(progress.data.list_) == 2

    # Submitted (a worker now): the upstream ids are set, completed_at is still null.
    worker = start_worker("sms_service.worker", stack["env"], stack["log_dir"], extra=["--concurrency", "2"])
    with running(worker):
        wait_until(lambda: len(stack["aliyun"].messages) == 5, 30, "5 messages at the Aliyun fake")

        def stored_as_submitted():
            record = get_record.sync_detailed(message_id, client=client).parsed.data
            return record.status == models.RecordDetailStatus.SUBMITTED

        # The fake has the call before the worker has stored its answer.
        wait_until(stored_as_submitted, 30, "the first message stored as submitted")
        submitted = parsed(get_record.sync_detailed(message_id, client=client), models.RecordDetailEnvelope)
        assert submitted.data.channel_response.biz_id and submitted.data.completed_at is None

        # The receipts go in through the generated client too, as the document describes Aliyun's push.
        receipts = [
            models.AliyunReceipt.from_dict(stack["aliyun"].receipt(m)) for m in stack["aliyun"].messages
        ]
        ack = parsed(
            aliyun_receipts.sync_detailed(client=sms.Client(stack["base_url"]), body=receipts, token=TOKEN),
            models.AliyunAck,
        )
        assert ack.code == 0

        def delivered():
            record = get_record.sync_detailed(message_id, client=client).parsed.data
            return record.status == models.RecordDetailStatus.SUCCESS and record.callback.attempts

        wait_until(delivered, 30, "success and a delivered callback")
        done = parsed(get_record.sync_detailed(message_id, client=client), models.RecordDetailEnvelope)
        attempt = done.data.callback.attempts[0]
        assert isinstance(attempt, models.CallbackAttempt) and attempt.status_code == 200
        assert done.data.completed_at is not None
        successes = parsed(
            search_records.sync_detailed(client=client, status=models.SearchRecordsStatus.SUCCESS, size=100),
            models.RecordPageEnvelope,
        )
        assert successes.data.total == 5
    assert "Traceback" not in worker.log(), worker.log()[-3000:]

    deleted = parsed(
        delete_template.sync_detailed(template_id, client=client), models.TemplateDeletedEnvelope
    )
    assert deleted.data.deleted is True


def test_error_answers_parse_as_the_error_envelope(sms, stack):
    from sms_client import models
    from sms_client.api.sms_records import get_record
    from sms_client.api.sms_send import send
    from sms_client.api.sms_templates import get_template

    tenant = json.loads(run_cli("sms_service", stack["env"], "tenant", "create", "--name", "errors"))
    client = client_for(sms, stack, tenant["api_key"])
    bad_mobile = send.sync_detailed(
        client=client, body=models.SendArgs(template_id="TPL_unknown", mobiles=["12345"])
    )
    assert bad_mobile.status_code == 400
    error = parsed(bad_mobile, models.ErrorEnvelope)
    assert error.code == 400 and "手机号" in error.message
    for response in (
        get_record.sync_detailed("MSG_20260101_unknown", client=client),
        get_template.sync_detailed("TPL_unknown", client=client),
    ):
        assert response.status_code == 404
        assert parsed(response, models.ErrorEnvelope).code == 404
    wrong_key = client_for(sms, stack, "sk_live_" + "x" * 43)
    unauthorised = get_record.sync_detailed("MSG_x", client=wrong_key)
    assert unauthorised.status_code == 401 and parsed(unauthorised, models.ErrorEnvelope).code == 401
